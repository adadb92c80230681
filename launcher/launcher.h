/* The launcher: the process `fcvm supervise` started as. It forks the supervisor (which drops
 * everything), the optional command, and each helper on the supervisor's request — the one
 * thing the capability-less supervisor cannot do itself. It keeps only the capabilities it
 * hands to helpers, under a seccomp filter that is a superset of theirs (filters stack across
 * fork and exec). It serves exactly four requests: spawn (a helper by name), vmm_spawn (a VMM,
 * supervisor/launcher_vmm.c), ready, ping. */
#ifndef FCVM_LAUNCHER_H
#define FCVM_LAUNCHER_H

#include <sys/types.h>

#include "proto/proto.h"
#include "supervisor/instance.h"

struct launcher_setup {
	const struct instance *inst;
	int chan;		   /* to the supervisor */
	int exe_fd[HELPER__COUNT]; /* O_PATH fds of the helper programs */
	int devnull;
	int data_fd;	 /* the data directory, handed to stored as fd 4 */
	int state_dirfd; /* to remove the socket at exit */
	int user_err;
	int lock_fd; /* flock on DIR/lock: one instance per state dir */ /* the user's stderr, for the few lines meant
									    for them */
	pid_t sup_pid;
	pid_t cmd_pid;	  /* 0: no command */
	int cmd_go;	  /* write end of the command's start pipe, or -1 */
	int vmm_exe_fd;	  /* O_PATH fd of qemu-system-x86_64, or -1 when not installed */
	int pasta_exe_fd; /* O_PATH fd of pasta (rootless VM networks), or -1 */
	int listen_fd;	  /* the control socket, kept to hand to a restarted supervisor */
};

/* In a child about to exec: a user namespace of its own (plus the CLONE_NEW* in more_ns)
 * where it is inner_uid/inner_gid, our uid/gid outside. 0 or -errno. */
int launcher_enter_userns(int more_ns, uid_t inner_uid, gid_t inner_gid);

/* VMMs (supervisor/launcher_vmm.c) */
#define VMM_ARGV_LIMIT 128
#define MAX_VMMS       256
int vmm_open_binary(void); /* O_PATH fd or -errno */
/* Start the VMM req asks for; fills rep; returns its pid, or -1 with rep's error set. */
pid_t vmm_spawn(const struct launcher_setup *ls, const struct pmsg *req, struct pmsg *rep);

/* pasta for a rootless VM network (supervisor/launcher_pasta.c) */
int pasta_open_binary(void); /* O_PATH fd or -errno */
/* Start pasta as req asks, once it is ready; fills rep; its pid, or -1 with rep's error set. */
pid_t pasta_spawn(const struct launcher_setup *ls, const struct pmsg *req, struct pmsg *rep);

/* Runs until the supervisor and the command are gone. Returns the exit status for
 * `fcvm supervise`: the command's, or 0 after an orderly stop. */
int launcher_main(struct launcher_setup *ls);

#endif
