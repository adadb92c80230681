/* Per-user quotas, enforced (common/quotas.h has the file and the limits): what one owner's
 * VMs hold now, and whether one more fits. */
#ifndef FCVM_SUPERVISOR_QUOTA_H
#define FCVM_SUPERVISOR_QUOTA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/quotas.h"
#include "proto/proto.h"

struct supervisor;
struct vm;

struct quota_use {
	uint64_t v[Q__COUNT];
};

/* What owner's VMs hold, vm (a VM being started) left out; snapshots are stored's to count
 * (the caller's count, or 0). */
void quota_use_of(const struct supervisor *s, uid_t owner, const struct vm *except, struct quota_use *u);
/* vm (its size, ports and network known) may start for its owner: PE_OK, or PE_NO_SPACE with
 * err naming the limit and the use. The host's available memory is checked too (a clone's
 * template is shared: not for clones). */
int quota_check_vm(const struct supervisor *s, const struct vm *vm, char *err, size_t n);
/* One more snapshot for owner, who has `have` already: PE_OK or PE_NO_SPACE (err). */
int quota_check_snapshot(const struct supervisor *s, uid_t owner, uint64_t have, char *err, size_t n);
/* The use and limits of owner as "quota" records of a status reply (snapshots: stored's count
 * of theirs, UINT64_MAX if it could not be had). */
void quota_put(const struct supervisor *s, uid_t owner, uint64_t snapshots, struct pmsg *m);

#endif
