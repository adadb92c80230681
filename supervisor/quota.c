/* Per-user quotas, counted from the VM list (supervisor/quota.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "supervisor/quota.h"
#include "supervisor/supervisor.h"
#include "supervisor/vm.h"

static bool holds_resources(const struct vm *vm)
{
	return vm->status != VM_STOPPED && vm->status != VM_LOST;
}

void quota_use_of(const struct supervisor *s, uid_t owner, const struct vm *except, struct quota_use *u)
{
	memset(u, 0, sizeof(*u));
	for (const struct vm *vm = TAILQ_FIRST(&s->vms); vm; vm = TAILQ_NEXT(vm, link)) {
		if (vm == except || vm->owner != owner || vm->removing)
			continue;
		u->v[Q_VMS]++;
		u->v[Q_DISK_GIB] += VM_DISK_SIZE >> 30;
		if (!holds_resources(vm))
			continue;
		u->v[Q_VMS_RUNNING]++;
		u->v[Q_VCPUS] += vm->qc.cpus;
		u->v[Q_MEM_MIB] += vm->qc.mem_mib;
		u->v[Q_PORTS] += vm->net.nports;
	}
}

static int over(enum quota_key k, uint64_t limit, uint64_t have, uint64_t want, char *err, size_t n)
{
	if (limit == QUOTA_UNLIMITED || have + want <= limit)
		return PE_OK;
	snprintf(err, n, "quota %s: you may have %llu %s; you have %llu and this wants %llu more", quota_key_name(k),
		 (unsigned long long)limit, quota_key_unit(k), (unsigned long long)have, (unsigned long long)want);
	return PE_NO_SPACE;
}

/* MemAvailable of /proc/meminfo, in MiB (UINT64_MAX if it cannot be read). */
static uint64_t host_mem_available_mib(void)
{
	char buf[4096];
	int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return UINT64_MAX;
	buf[n] = 0;
	const char *p = strstr(buf, "MemAvailable:");
	if (!p)
		return UINT64_MAX;
	char *end;
	errno = 0;
	unsigned long long kb = strtoull(p + strlen("MemAvailable:"), &end, 10);
	return errno || end == p + strlen("MemAvailable:") ? UINT64_MAX : kb >> 10;
}

/* A refusal is logged as refusals are: per uid, at most LOG_BURST lines per window. */
static int refused(uid_t owner, int rc, const char *err)
{
	if (rc != PE_OK)
		log_audit_limited((unsigned)owner, "uid %u refused: %s", (unsigned)owner, err);
	return rc;
}

static int check_vm(const struct supervisor *s, const struct vm *vm, char *err, size_t n)
{
	struct quota_limits l;
	struct quota_use u;
	quotas_for(&s->quotas, vm->owner, &l);
	quota_use_of(s, vm->owner, vm, &u);
	const uint64_t want[Q__COUNT] = {
	    [Q_VMS] = 1,
	    [Q_VMS_RUNNING] = 1,
	    [Q_VCPUS] = vm->qc.cpus,
	    [Q_MEM_MIB] = vm->qc.mem_mib,
	    [Q_DISK_GIB] = VM_DISK_SIZE >> 30,
	    [Q_PORTS] = vm->net.nports,
	};
	for (int k = 0; k < Q__COUNT; k++) {
		int rc = want[k] ? over((enum quota_key)k, l.v[k], u.v[k], want[k], err, n) : PE_OK;
		if (rc)
			return rc;
	}
	uint64_t avail = vm->clone_of[0] ? UINT64_MAX : host_mem_available_mib();
	if (avail != UINT64_MAX && vm->qc.mem_mib > avail) {
		snprintf(err, n, "this host has %llu MiB of memory available; the VM wants %u MiB (--mem)",
			 (unsigned long long)avail, vm->qc.mem_mib);
		return PE_NO_SPACE;
	}
	return PE_OK;
}

int quota_check_vm(const struct supervisor *s, const struct vm *vm, char *err, size_t n)
{
	return refused(vm->owner, check_vm(s, vm, err, n), err);
}

int quota_check_snapshot(const struct supervisor *s, uid_t owner, uint64_t have, char *err, size_t n)
{
	struct quota_limits l;
	quotas_for(&s->quotas, owner, &l);
	return refused(owner, over(Q_SNAPSHOTS, l.v[Q_SNAPSHOTS], have, 1, err, n), err);
}

void quota_put(const struct supervisor *s, uid_t owner, uint64_t snapshots, struct pmsg *m)
{
	struct quota_limits l;
	struct quota_use u;
	quotas_for(&s->quotas, owner, &l);
	quota_use_of(s, owner, NULL, &u);
	u.v[Q_SNAPSHOTS] = snapshots;
	for (int k = 0; k < Q__COUNT; k++) {
		struct precord *r = prec_add_record(m, &m->body, "quota");
		if (!r)
			return;
		prec_set_str(m, r, "name", quota_key_name((enum quota_key)k));
		if (u.v[k] != UINT64_MAX)
			prec_set_uint(m, r, "used", u.v[k]);
		if (l.v[k] != QUOTA_UNLIMITED)
			prec_set_uint(m, r, "limit", l.v[k]);
	}
}
