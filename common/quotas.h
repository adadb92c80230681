/* Per-user quotas: what one user's VMs may hold at once in an instance (docs/quotas.md).
 * A text file (etc/quotas.conf is the shipped one, installed as /etc/fcvm/quotas.conf):
 *   default KEY N|unlimited          every user
 *   user NAME|UID KEY N|unlimited    one user, over the default
 * Checked by the launcher as the instance starts (a bad file is refused there, with its
 * line), read again by the supervisor before it sandboxes itself, which enforces it. */
#ifndef FCVM_QUOTAS_H
#define FCVM_QUOTAS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum quota_key {
	Q_VMS,	       /* VMs, running or stopped */
	Q_VMS_RUNNING, /* VMs not stopped */
	Q_VCPUS,       /* of the VMs not stopped */
	Q_MEM_MIB,     /* guest memory of the VMs not stopped */
	Q_DISK_GIB,    /* the VMs' disks, at their full (apparent) size */
	Q_SNAPSHOTS,   /* snapshots of kind user (the startup cache has FCVM_CACHE_MAX_MB) */
	Q_PORTS,       /* published ports of the VMs not stopped */
	Q__COUNT
};
#define QUOTA_UNLIMITED UINT64_MAX
#define QUOTA_USERS_MAX 128

struct quota_limits {
	uint64_t v[Q__COUNT];
};

struct quotas {
	struct quota_limits def;
	size_t nusers;
	struct quota_user {
		uid_t uid;
		uint64_t set_mask; /* bit k: v[k] is this user's own */
		struct quota_limits l;
	} users[QUOTA_USERS_MAX];
};

const char *quota_key_name(enum quota_key k);
/* What a limit counts, for messages: "VMs", "MiB of guest memory"... */
const char *quota_key_unit(enum quota_key k);
/* The built-in defaults (those of the shipped file). */
void quotas_default(struct quotas *q);
/* text (NUL-terminated) over the defaults: 0, or -1 with err naming the line. */
int quotas_parse(struct quotas *q, const char *text, char *err, size_t n);
/* The file at path over the defaults; a missing file leaves the defaults (0). */
int quotas_load(struct quotas *q, const char *path, char *err, size_t n);
/* uid's limits. */
void quotas_for(const struct quotas *q, uid_t uid, struct quota_limits *out);

#endif
