/* Per-VM resource limits for QEMU on the host, as cgroups: each VM slot's QEMU runs in a
 * cgroup of its own, vm-SLOT, under one the instance made for its VMs, with a memory limit
 * (its RAM and QEMU's own overhead), a task limit and a CPU quota (its vCPUs and a half core
 * for QEMU's own threads). An over-limit QEMU is killed by the kernel within its cgroup: the
 * VM dies, the host and the other VMs do not notice.
 *
 * Where the host delegates cgroup v2 controllers (memory, pids, cpu) to the instance, v2;
 * where it keeps them on v1 hierarchies (a hybrid host), v1 for root's instances; else none,
 * with the reason (fcvm status shows it, and each VM's inspect). docs/architecture.md,
 * "Per-VM resource limits". */
#ifndef FCVM_VMM_CGROUP_H
#define FCVM_VMM_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum cg_kind { CG_NONE, CG_V1, CG_V2 };

enum cg_ctrl { CG_MEMORY, CG_PIDS, CG_CPU, CG__CTRLS };

struct vmm_cgroups {
	enum cg_kind kind;
	int dir[CG__CTRLS]; /* the VMs' parent cgroup (O_PATH): v2 one for all, v1 one per hierarchy */
	char why[320];	    /* CG_NONE: why there are no limits */
	int overhead_mib;   /* QEMU's own memory beyond the guest's RAM: FCVM_VMM_MEM_OVERHEAD_MIB, or -1 (ours) */
	char path[CG__CTRLS][PATH_MAX]; /* the parents (v2: path[0] alone) */
	char origin[PATH_MAX];		/* v2: the cgroup the instance moved out of */
	bool made;			/* v2: the parent is one prepare made (not the delegated own) */
};

#define CG_OVERHEAD_MIB 384  /* QEMU's own: its code, heap, device buffers */
#define CG_TCG_CODE_MIB 1024 /* and under TCG its translation cache, which QEMU 7.2 sizes to 1 GiB */

struct vmm_limits {
	uint64_t mem_bytes; /* memory.max / memory.limit_in_bytes */
	unsigned pids;
	uint64_t cpu_quota_us, cpu_period_us;
};

/* What a VM of cpus vCPUs and mem_mib of RAM is held to: its RAM, a sixteenth more and
 * QEMU's own (CG_OVERHEAD_MIB, and CG_TCG_CODE_MIB more under TCG; or what the environment
 * said); 256 tasks; its vCPUs and half a CPU. */
void vmm_limits_for(const struct vmm_cgroups *cg, unsigned cpus, unsigned mem_mib, bool tcg, struct vmm_limits *l);

/* At the start, with the starting user's rights (root in system mode): find where limits can
 * be had, make the instance's parent cgroup ("fcvm-TAG"), hand it to owner (the uid the
 * spawner runs as), clear empty vm-* left by an earlier run. Never fails: cg->kind says
 * what was had. FCVM_VMM_MEM_OVERHEAD_MIB in the environment replaces the memory overhead
 * (the instance's owner tunes it; a test makes it 0). */
void vmm_cgroup_prepare(struct vmm_cgroups *cg, const char *tag, uid_t owner, gid_t group);

/* At the end, root's last process (system mode): the parents and their empty vm-* removed. */
void vmm_cgroup_release(const struct vmm_cgroups *cg);

/* In the spawner's child of VM slot, before it leaves the spawner's uid: its cgroup,
 * limits, and the child moved into it. 0, or -errno with what failed in err. */
int vmm_cgroup_enter(const struct vmm_cgroups *cg, unsigned slot, const struct vmm_limits *l, char *err, size_t len);

/* One line for logs, status and inspect: "cgroup v1: memory 1280 MiB, 256 tasks, 1.5 CPUs"
 * (l NULL: without the figures), or "none: WHY". */
void vmm_cgroup_describe(const struct vmm_cgroups *cg, const struct vmm_limits *l, char *buf, size_t len);

/* The fds prepare kept open (for the spawner's keep list): up to CG__CTRLS, -1 for none. */
static inline int vmm_cgroup_fd(const struct vmm_cgroups *cg, enum cg_ctrl c)
{
	return cg->dir[c];
}

#endif
