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

/* Default state dir of an instance started by this user: /run/fcvm for root,
 * $XDG_RUNTIME_DIR/fcvm (or /tmp/fcvm-UID) for others. */
const char *cli_default_state_dir(void);

/* Connect to the supervisor (see cli/connect.c for the lookup order). Returns a connected
 * fd, or -1 after printing what is wrong and what to do (*exit_code set). */
int cli_connect(const struct cli_opts *o, int *exit_code);

/* Send req, read its reply into rep. Returns EXIT_OK, or an exit code after printing the
 * error (the reply's error message, or the transport failure). rep must be pmsg_free'd. */
int cli_call(int fd, struct pmsg *req, struct pmsg *rep);

/* Print a record as JSON (one object), for --json output. */
void cli_print_json(const struct precord *r);

int cmd_supervise(int argc, char **argv, const char *state_dir);
int cmd_status(int argc, char **argv, struct cli_opts *o);
int cmd_ping(int argc, char **argv, struct cli_opts *o);
int cmd_version(int argc, char **argv, struct cli_opts *o);
int cmd_shutdown(int argc, char **argv, struct cli_opts *o);
int cmd_disk(int argc, char **argv, struct cli_opts *o);
int cmd_setup(int argc, char **argv, struct cli_opts *o);

/* "10G" -> bytes (binary units: K, M, G, T, optional "B"/"iB"). false on junk or overflow. */
bool cli_parse_size(const char *s, uint64_t *out);

#endif
