/* The `fcvm` command: a thin layer over the supervisor's control socket. */
#ifndef FCVM_CLI_H
#define FCVM_CLI_H

#include <stdbool.h>
#include "proto/proto.h"

/* Exit codes (documented in README). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1, /* the operation failed */
	EXIT_USAGE = 2,
	EXIT_NO_SUPERVISOR = 3, /* nothing listening where we looked */
	EXIT_DENIED = 4,	/* permission denied */
	EXIT_UNAVAILABLE = 5,	/* a helper is down (restarting) */
};

struct cli_opts {
	const char *state_dir; /* --state-dir or FCVM_STATE_DIR; NULL: the default lookup */
	bool json;
};

/* Default state dir of an instance started by this user: common/paths.h's
 * paths_default_state_dir() (/run/fcvm for root, else $XDG_RUNTIME_DIR/fcvm or
 * ~/.local/state/fcvm/run), saying on stderr what it passed over; NULL (said why) when there is
 * no safe place. */
const char *cli_default_state_dir(void);

/* Connect to the supervisor (see cli/connect.c for the lookup order). Returns a connected
 * fd, or -1 after printing what is wrong and what to do (*exit_code set). */
int cli_connect(const struct cli_opts *o, int *exit_code);

/* Send req, read its reply into rep. Returns EXIT_OK, or an exit code after printing the
 * error (the reply's error message, or the transport failure). rep must be pmsg_free'd. */
int cli_call(int fd, struct pmsg *req, struct pmsg *rep);
/* The reading half of cli_call: the reply to op (sent by the caller), checked and printed
 * like cli_call's. rep must be pmsg_free'd. */
int cli_reply(int fd, enum proto_op op, struct pmsg *rep);

/* cli_connect, then cli_call (rep initialised either way: pmsg_free it). */
int cli_simple_call(struct cli_opts *o, struct pmsg *req, struct pmsg *rep);
/* "12s ago", "5m ago", "3h ago" */
void cli_age(uint64_t created_ms, char *buf, size_t n);

/* Print a record as JSON (one object), for --json output. */
void cli_print_json(const struct precord *r);
/* A record's FT_RECORDS field as a JSON array (listings). */
void cli_print_json_list(const struct precord *r, const char *field);

int cmd_supervise(int argc, char **argv, const char *state_dir);
int cmd_status(int argc, char **argv, struct cli_opts *o);
int cmd_ping(int argc, char **argv, struct cli_opts *o);
int cmd_version(int argc, char **argv, struct cli_opts *o);
int cmd_shutdown(int argc, char **argv, struct cli_opts *o);
int cmd_disk(int argc, char **argv, struct cli_opts *o);
int cmd_setup(int argc, char **argv, struct cli_opts *o);

/* VMs: fcvm podman run (cli/cmd_run.c); exec, ls, stop, rm, logs (cli/cmd_vm.c) */
int cmd_podman(int argc, char **argv, struct cli_opts *o);
/* --publish [IP:]HOST:GUEST[/tcp|udp][,...] into req's "ports" (cli/publish.c); 0 or -1 (said why). */
int cli_add_publish(struct pmsg *req, const char *arg);
/* -e KEY[=VALUE] and --env-file FILE into req's "env" (cli/request_opts.c); 0 or -1 (said why). */
int cli_add_env(struct pmsg *req, const char *arg);
int cli_add_env_file(struct pmsg *req, const char *path);
/* An option (getopt's value val) that only sets a field of the request: a string, a list
 * element, true, a number (FO_SECONDS: "30" or "30s"), or -e / --env-file. */
enum field_opt_kind { FO_STR, FO_LIST, FO_FLAG, FO_UINT, FO_SECONDS, FO_ENV, FO_ENV_FILE };
struct field_opt {
	int val;
	const char *field;
	enum field_opt_kind kind;
};
/* c one of table t's: its field set from arg. 1 done, -1 a bad value (said why), 0 not one of t's. */
int cli_field_opt(struct pmsg *req, const struct field_opt *t, size_t n, int c, const char *arg);
int cmd_exec(int argc, char **argv, struct cli_opts *o);
int cmd_ls(int argc, char **argv, struct cli_opts *o);
int cmd_stop(int argc, char **argv, struct cli_opts *o);
int cmd_rm(int argc, char **argv, struct cli_opts *o);
int cmd_logs(int argc, char **argv, struct cli_opts *o);
int cmd_image(int argc, char **argv, struct cli_opts *o);
/* fcvm snapshot create | run | ls | rm (cli/cmd_snapshot.c) */
int cmd_snapshot(int argc, char **argv, struct cli_opts *o);

/* One session's stdio relayed until its exit (cli/session_io.c). Returns the process's exit
 * code, or an fcvm exit code when the connection is lost. */
struct cli_session {
	uint32_t sid;
	const char *vm; /* a container run: signals stop this VM */
	bool logs;	/* `fcvm logs`: signals just end it */
	bool tty;	/* raw terminal, window size followed */
	bool stdin_open;
};
int cli_session(int fd, const struct cli_session *s);
bool cli_term_size(unsigned *rows, unsigned *cols);
/* tty and stdin in req, with the terminal's size when tty. */
void cli_set_stdio(struct pmsg *req, bool tty, bool in);
/* Send req (freed here), take the session number from its reply, then relay the session
 * (s->sid is set here). Returns cli_session's code, or the call's failure. */
int cli_call_session(struct cli_opts *o, struct pmsg *req, struct cli_session *s);
/* The reply to a VM start (podman run, snapshot run) already sent on fd: its warning shown,
 * then the VM's name printed (detached) or its container's session relayed to the end. */
int cli_started(int fd, enum proto_op op, bool detach, bool tty, bool in);
/* Send req with one fd beside it (SCM_RIGHTS with the frame's first byte). 0 or -errno. */
int cli_send_with_fd(int sock, const struct pmsg *req, int fd);

/* "10G" -> bytes (binary units: K, M, G, T, optional "B"/"iB"). false on junk or overflow. */
bool cli_parse_size(const char *s, uint64_t *out);

#endif
