/* The launcher: `fcvm-launcher`, what `fcvm supervise` execs. Two processes:
 *
 *  - the launcher proper (launcher.c): the only one the supervisor talks to. It serves
 *    spawn (a helper by name), vmm_spawn (a VM from a typed, checked config: it builds
 *    QEMU's command line itself), pasta_spawn (ports parsed and checked here), ready and
 *    ping; it reaps every child (a child subreaper), restarts the supervisor, stops
 *    everything at the end. It holds CAP_KILL only, under a filter of its own work.
 *  - the spawner (spawner.c): forked before the launcher's filter, so the programs it
 *    starts do not run under it. It takes orders from the launcher proper alone (a
 *    private socketpair, fixed-size records), starts only the programs of its table, each
 *    as the uid, with the capabilities and in the namespaces the table gives that program,
 *    and makes each child the launcher's (CLONE_PARENT).
 */
#ifndef FCVM_LAUNCHER_H
#define FCVM_LAUNCHER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/instance.h"
#include "launcher/vmm_cgroup.h"
#include "proto/proto.h"

/* What the spawner may start. */
enum prog {
	PROG_SUPERVISOR,
	PROG_NETD,
	PROG_STORED,
	PROG_UFFDD,
	PROG_QEMU,
	PROG_PASTA,
	PROG__COUNT,
};

#define MAX_VMMS 256

/* Everything `fcvm-launcher` acquired with the starting user's rights (setup.c). */
struct launcher_setup {
	struct instance *inst;
	int exe_fd[PROG__COUNT]; /* O_PATH fds of the programs (-1: not installed: QEMU, pasta) */
	int devnull;
	int data_fd;	 /* the data directory, handed to stored as fd 4 */
	int state_dirfd; /* to remove the socket at exit */
	int user_err;	 /* the user's stderr, for the few lines meant for them */
	int lock_fd;	 /* flock on DIR/lock: one instance per state dir */
	int listen_fd;	 /* the control socket, handed to every supervisor */
	int vms_fd;	 /* STATE_DIR/vms, handed to every supervisor */
	pid_t cmd_pid;	 /* 0: no command */
	int cmd_go;	 /* write end of the command's start pipe, or -1 */
	uid_t launcher_uid;
	gid_t launcher_gid;
	uid_t vmm_uid_base; /* system mode: VM slot i runs as vmm_uid_base + i (/etc/subuid) */
	gid_t vmm_gid_base;
	unsigned vmm_uids;     /* how many uids that range has (0: every VMM is inst->vmm_uid) */
	gid_t kvm_gid;	       /* /dev/kvm's group, given to VMMs as a supplementary group (0: none) */
	struct vmm_cgroups cg; /* where each VMM's cgroup is made (kind CG_NONE: no limits, why) */
	bool firecracker;      /* a firecracker binary is installed (told to the supervisor) */
};

/* ---- the spawner (spawner.c) ---- */

#define SPAWN_ARGS_BYTES 8192
#define SPAWN_ARGS_MAX	 128
#define SPAWN_FDS_MAX	 12

/* One order from the launcher proper: program, VM slot (QEMU), argv as NUL-separated
 * strings, and fds attached (placed on 3.. in order). */
struct spawn_order {
	uint32_t prog;		  /* enum prog */
	uint32_t slot;		  /* PROG_QEMU: which VM slot (its uid) */
	uint32_t nargs;		  /* strings in args (argv[1..]; argv[0] is the program's own name) */
	int32_t out_fd;		  /* index of the fd that becomes stdout and stderr, or -1: the log */
	struct vmm_limits limits; /* PROG_QEMU: its cgroup's */
	char args[SPAWN_ARGS_BYTES];
};

struct spawn_result {
	int32_t pid; /* > 0, or -errno */
	char msg[256];
};

/* Fork the spawner (before the launcher's own sandbox). Returns the launcher's end of its
 * channel, or -errno. */
int spawner_start(const struct launcher_setup *ls);
/* The uid (and gid) VM slot's QEMU runs as: the slot's own from fcvm-vmm's range (system
 * mode), fcvm-vmm without a range, the user (rootless). */
uid_t vmm_ids(const struct launcher_setup *ls, unsigned slot, gid_t *gid);
/* Ask it; blocks for the answer (the spawner answers at once: it never waits on a child
 * but for the exec itself). Returns the pid or -errno with the reason in msg. */
pid_t spawner_ask(int chan, const struct spawn_order *o, const int *fds, unsigned nfds, char *msg, size_t len);

/* ---- the children's side, run by the spawner between fork and exec ---- */

struct sandbox_policy;
/* System mode: become uid/gid, holding nothing but what p lists, raised into the ambient set
 * (plus CAP_SETPCAP for the program's own lock-down stage, and CAP_SYS_ADMIN for its empty
 * root when p has one: both gone after its stage 4) so that the program starts with exactly
 * that. p NULL, or without caps or empty root: nothing at all. 0 or -errno. */
int spawn_become(uid_t uid, gid_t gid, const struct sandbox_policy *p);

/* QEMU's confinement (vmm_jail.c): namespaces (user, mount, network, IPC, UTS, PID), an
 * empty root with only /usr, a fresh /proc and a few devices, its filter, then exec. */
__attribute__((noreturn)) void vmm_jail_exec(int exe_fd, int report_fd, char **argv);

/* ---- the launcher proper's requests (vmm.c, pasta.c) ---- */

struct launcher {
	struct launcher_setup *ls;
	int spawner; /* the spawner's channel */
	int chan;    /* the supervisor's */
	pid_t sup_pid;
	pid_t helper_pid[HELPER__COUNT];
	pid_t vmm_pid[MAX_VMMS];   /* 0: free slot (the slot is the VM's uid in system mode) */
	pid_t pasta_pid[MAX_VMMS]; /* the rootless network of vmm_pid[i], or 0 */
	int sigfd;
	bool cmd_done, sup_done, ready, shutdown_sent;
	uint64_t first_signal_ms;   /* the first SIGINT/SIGTERM/SIGHUP (CLOCK_MONOTONIC) */
	unsigned sup_restarts;	    /* within the current window */
	uint64_t restart_window_ms; /* start of that window */
	int cmd_status, sup_status;
	uint64_t started_ms, deadline_ms; /* deadline: 0 = none */
	uint32_t next_id;
	unsigned long tsc_khz; /* measured at start, for the guests' tsc_early_khz */
	bool kvm_usable;
	unsigned vmm_cpus_max, vmm_mem_max; /* policy (launcher.policy) */
	unsigned port_min, port_max;	    /* host ports a VM may publish (netd.policy) */
};

/* Read one request from the supervisor's channel and answer it (tests feed it forged ones).
 * false when the channel is gone or sent a malformed frame. */
bool launcher_read_channel(struct launcher *L);
/* L's limits from launcher.policy (vCPUs, memory) and netd.policy (ports): 0 or -1. */
int launcher_policy_limits(struct launcher *L);
/* Refuse a request: an error reply and an audit line, both saying why. */
void launcher_refuse(struct pmsg *rep, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Build a VM's QEMU command line from the typed request and ask the spawner; fills rep. */
pid_t vmm_spawn(struct launcher *L, unsigned slot, const struct pmsg *req, struct pmsg *rep);
/* pasta for a rootless VM network: ports re-checked here. */
pid_t pasta_spawn(struct launcher *L, const struct pmsg *req, struct pmsg *rep);

/* Runs until the supervisor and the command are gone. Returns the exit status for
 * `fcvm supervise`: the command's, or 0 after an orderly stop. */
int launcher_main(struct launcher_setup *ls, int spawner);

/* `fcvm-launcher [--state-dir DIR] [--data-dir DIR] [--assets DIR] [-- CMD...]` */
int launcher_setup_main(int argc, char **argv);

#endif
