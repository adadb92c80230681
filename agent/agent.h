/* fcvm-agent: the guest's PID 1 (docs/agent-protocol.md). One poll() loop, no threads. */
#ifndef FCVM_AGENT_H
#define FCVM_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>

#include "proto/proto.h"

#define OUT_WINDOW (256 * 1024) /* unacknowledged output kept per session */
#define OUT_CHUNK  4096		/* bytes of output in one proc_output */
/* Chunks held per session: stdout and stderr interleaved in tiny writes would otherwise cost
 * a 4 KiB chunk per byte; reaching it stops reading like a full window. */
#define OUT_CHUNKS_MAX (2 * OUT_WINDOW / OUT_CHUNK)
#define WQ_OUTPUT      (256 * 1024)  /* encode output only while less than this is queued */
#define WQ_READ_STOP   (1024 * 1024) /* stop reading requests while this much is queued */
#define INQ_MAX	       (1024 * 1024) /* stdin bytes buffered for a process that does not read */

#define DEFAULT_PORT   "org.fcvm.agent"
#define CONTAINER_NAME "fcvm"
#define STATE_MNT      "/var/lib/containers"

enum host_mode { CHAN_FD, CHAN_LISTEN, CHAN_VIRTIO };

struct chan {
	enum host_mode mode;
	int fd;		   /* the connection; -1 when there is none */
	int lfd;	   /* CHAN_LISTEN: the listening socket */
	bool synced;	   /* agent_hello seen on this connection: output may flow */
	bool hup;	   /* CHAN_VIRTIO: host away; poll the port again at retry_ms */
	uint64_t retry_ms; /* CHAN_VIRTIO: next look at the port (or next search for it) */
	char port[64];
	unsigned char *rbuf;
	size_t rlen;
	unsigned char *wq;
	size_t whead, wlen, wcap;
};

enum session_kind { SK_VM, SK_RUN, SK_EXEC };

struct chunk {
	struct chunk *next;
	uint64_t off; /* offset of data[0] in the session's output */
	uint32_t len;
	uint8_t stream;
	unsigned char data[OUT_CHUNK];
};

struct session {
	struct session *next;
	uint32_t id;
	enum session_kind kind;
	bool tty, want_stdin;
	pid_t pid;	    /* > 0 while the process runs */
	bool done;	    /* the process was reaped (or never started) */
	int code, sig;	    /* exit status, or 128 + signal; sig 0 if none */
	int child_fd[3];    /* the child's stdio until it is spawned */
	int in_fd;	    /* our end of its stdin, -1 */
	int out_fd[2];	    /* our ends of stdout, stderr (pty: [0] is the master) */
	int pty;	    /* pty master (kept for resize), -1 */
	unsigned char *inq; /* stdin bytes not yet written */
	size_t inlen, incap;
	bool in_eof; /* close stdin once inq is written */
	struct chunk *head, *tail;
	uint64_t acked, sent, total;
	unsigned nchunks;
	bool exit_sent, released;
	char **argv, **env;   /* SK_RUN: kept until podman load is done */
	char *workdir, *user; /* -w, -u (NULL: the container's own) */
	char **run_opts;      /* SK_RUN: podman run's options, each --NAME[=VALUE] */
	bool privileged, detach;
	bool hold; /* SK_RUN: held before the container's process starts (hold.c) */
};

/* starting: `podman run` spawned, the container not yet running (podman exec would fail) */
enum container_state { CS_NONE, CS_LOADING, CS_STARTING, CS_RUNNING, CS_EXITED };

struct agent {
	bool boot; /* PID 1 of a guest (not the host-side test mode) */
	bool debug;
	bool exit_on_eof;
	bool net_on; /* the guest's NIC is configured: the container shares it (--network=host) */
	bool shutting_down;
	const char *podman;
	const char *cidfile; /* podman run --cidfile: the container exists once it has content */
	char image[256];
	uint64_t ready_ms;
	int sigfd;
	struct chan ch;
	struct session *sessions;
	enum container_state cstate;
	int cexit;
};

extern struct agent ag;

/* main.c */
void alog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void aerr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t boottime_ms(void);
void agent_exit(int code) __attribute__((noreturn));

/* boot.c: everything PID 1 does before it serves (mounts, modules, switch root). */
void boot_init(void);
/* The device /dev/E of the entry E of sysfs DIR whose name starts with PREFIX and whose
 * attribute ATTR reads WANT (a disk by virtio serial, a port by name). */
bool sysfs_find_dev(const char *dir, const char *prefix, const char *attr, const char *want, char *dev, size_t devlen);
void boot_shutdown(void) __attribute__((noreturn));

/* chan.c */
int host_open_fd(int fd);
int host_listen(const char *path);
void host_open_virtio(const char *port);
int host_pollfds(struct pollfd *p, uint64_t now, int *timeout); /* fills up to 2 */
void host_events(const struct pollfd *p, int n);
void host_send(const struct pmsg *m);
void host_send_raw(const void *p, size_t n);
bool host_output_room(void);
void host_flush(void);
void host_sigio(void);
void host_malformed(void);
void host_drain(int ms); /* blocking best-effort flush, for shutdown */

/* restore.c: a clone's clock, entropy, hostname and neighbours set again */
void do_restore(const struct pmsg *req);

/* dispatch.c: one decoded frame from the host */
void dispatch_frame(const unsigned char *buf, size_t len);

/* session.c */
struct session *session_find(uint32_t id);
int session_start(const struct precord *req, char *why, size_t whylen);
int session_spawn(struct session *s, char *const *argv, char *const *envp);
int session_spawn_exec(struct session *s, char *const *argv, char *const *envp, bool fast);

/* fastexec.c: exec in the container without podman exec where that gives the same result */
bool fastexec_possible(const struct session *s);
/* health.c: --health-cmd, run in the container every interval once it runs */
void health_configure(const char *cmd, unsigned interval_s, unsigned retries);
const char *health_state_name(void); /* starting | healthy | unhealthy; NULL: no command */
void health_tick(uint64_t now, int *timeout);
bool health_reaped(pid_t pid, int status);

/* the container's /dev/pts/ptmx as the guest reaches it (/proc/PID/root/...), if known */
bool fastexec_ptmx(char *path, size_t len);
void fastexec_child(const struct session *s, char *const *podman_argv, char *const *podman_envp)
    __attribute__((noreturn));
void session_fail(struct session *s, int code, const char *text);
void session_input(struct session *s, const void *data, size_t n, bool eof);
void session_resize(struct session *s, unsigned rows, unsigned cols);
void session_signal(struct session *s, int sig);
void session_ack(struct session *s, uint64_t off);
void session_release(struct session *s);
void sessions_hello(void);
void sessions_pump(void);
void sessions_sweep(void);
void sessions_kill(int sig);
bool session_reaped(pid_t pid, int status);
int sessions_pollfds(struct pollfd **p, size_t *cap, size_t n, struct session ***who, size_t *whocap);
void session_events(struct session *s, const struct pollfd *p);

/* container.c */
const char *container_state_name(void);
/* ref: an image already in the guest's image store (run it, no load); NULL: load the image disk. */
int container_run(struct session *s, const char *ref, char *why, size_t whylen);
char **container_exec_argv(const struct session *s, char *const *argv, char *const *env);
char **container_run_options(const struct precord *req);
bool container_reaped(pid_t pid, int status);
void container_run_exited(int code);
int container_pollfd(struct pollfd *p);

/* hold.c: the container held before its start (the host's startup cache) */
const char *hold_prepare(uint32_t session); /* podman run's option for it, or NULL: no hold */
void hold_release(const char *why);
int hold_pollfds(struct pollfd *p, uint64_t now, int *timeout); /* fills up to 1 */
void hold_events(const struct pollfd *p, int n, uint64_t now);
int hold_client(const char *socket_path); /* `fcvm-agent --hold SOCKET`: the hook itself */
void container_events(const struct pollfd *p);
void container_kill(int sig);
char **strv_dup(const struct pval *v);
void strv_free(char **v);
char **default_env(char *const *extra, bool tty);

#endif
