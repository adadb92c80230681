/* One fcvm instance: where it lives and who runs what. Filled by `fcvm supervise` before
 * any process forks; read-only afterwards. */
#ifndef FCVM_INSTANCE_H
#define FCVM_INSTANCE_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

enum helper_id { HELPER_NETD, HELPER_STORED, HELPER_UFFDD, HELPER__COUNT };

struct instance {
	bool system_mode; /* started by root: helpers keep only their caps, the supervisor runs
			     as FCVM_SUPERVISOR_USER; otherwise rootless (user namespaces) */
	bool multi_user;  /* the host-wide instance: any local user may be a client */
	char state_dir[PATH_MAX];
	char socket_path[PATH_MAX];
	char data_dir[PATH_MAX]; /* images and disks: stored's, and only stored's */
	uid_t owner_uid;	 /* who started it */
	uid_t sup_uid, helper_uid;
	gid_t sup_gid, helper_gid;
	uid_t vmm_uid; /* VMM processes (system mode: FCVM_VMM_USER) */
	gid_t vmm_gid;
	char assets_dir[PATH_MAX]; /* guest kernel, initramfs, rootfs, demo image (fcvm setup) */
	const char *mode_name;	   /* "system" | "rootless" */
	char tag[9];		   /* 8 hex digits from the state directory: names this instance's kernel objects
				      (netd's nftables table and link records), so instances never touch each other's */
};

const char *helper_name(enum helper_id id);
/* -1 if name is not a helper */
int helper_by_name(const char *name);

#endif
