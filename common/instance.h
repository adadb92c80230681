/* One fcvm instance: where it lives and who runs what. Filled by the launcher (setup.c)
 * before any process forks; handed to the supervisor on its command line; read-only
 * afterwards. */
#ifndef FCVM_INSTANCE_H
#define FCVM_INSTANCE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum helper_id { HELPER_NETD, HELPER_STORED, HELPER_UFFDD, HELPER__COUNT };

struct instance {
	bool system_mode; /* started by root: each process runs as its own user with only its
			     caps; otherwise rootless (user namespaces) */
	bool multi_user;  /* the host-wide instance: any local user may be a client */
	char state_dir[PATH_MAX];
	char socket_path[PATH_MAX];
	char data_dir[PATH_MAX];   /* images and disks: stored's, and only stored's */
	char assets_dir[PATH_MAX]; /* guest kernel, initramfs, rootfs, demo image (fcvm setup) */
	uid_t owner_uid;	   /* who started it */
	uid_t sup_uid;		   /* the supervisor's user */
	gid_t sup_gid;
	uid_t helper_uid[HELPER__COUNT]; /* each helper's own user (rootless: all the user) */
	gid_t helper_gid[HELPER__COUNT];
	uid_t vmm_uid; /* VMMs without a uid of their own (system mode: FCVM_VMM_USER) */
	gid_t vmm_gid;
	const char *mode_name; /* "system" | "rootless" */
	/* the startup cache's bound per user, in MiB (FCVM_CACHE_MAX_MB when the instance starts;
	 * 0: no cache); cache_max_set false: the supervisor's default */
	uint64_t cache_max_mb;
	bool cache_max_set;
	/* the per-user quotas file (common/quotas.h; FCVM_QUOTAS_FILE unless `supervise --quotas`),
	 * checked by the launcher, read by the supervisor as it starts */
	char quotas_path[PATH_MAX];
	char tag[9]; /* 8 hex digits from the state directory: names this instance's kernel objects
			(netd's nftables table and link records), so instances never touch each other's */
};

const char *helper_name(enum helper_id id);
/* -1 if name is not a helper */
int helper_by_name(const char *name);

/* The supervisor's command line: what it needs of the instance. instance_args fills argv
 * (strings in buf) and returns the count, or -1 if it does not fit. instance_parse is its
 * inverse (0, or -1 on anything unexpected). */
int instance_args(const struct instance *in, char **argv, size_t max, char *buf, size_t len);
int instance_parse(struct instance *in, int argc, char **argv);

#endif
