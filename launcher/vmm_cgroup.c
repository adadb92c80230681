/* Per-VM cgroups for QEMU (vmm_cgroup.h). Where each step runs and why it is allowed:
 *
 *  - prepare, at the start with the starting user's rights: the parent cgroup "fcvm-TAG" (v1:
 *    one in each of the memory, pids and cpu hierarchies, beside the launcher's own; v2: the
 *    launcher's own cgroup when it is delegated to it and holds nothing else, else, for root,
 *    one under the v2 root), handed to the spawner's uid. In v2 the instance itself moves into
 *    a leaf, PARENT/instance: a cgroup with controllers for its children holds no processes,
 *    and a process may only be moved between cgroups whose common ancestor its mover may
 *    write (here PARENT, the spawner's).
 *  - enter, in the spawner's child of a VM, still the spawner's uid: it makes vm-SLOT (its
 *    files are then its own), writes the limits, and moves itself in; then it becomes the
 *    VM's uid, jails itself and execs QEMU, which cannot leave: the cgroup files are not its.
 *
 * A slot's cgroup is kept for the slot's next VM (same name, limits rewritten); empty ones
 * left by an earlier run are removed at the next start. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "launcher/vmm_cgroup.h"

#define CG_TASKS     256 /* QEMU's threads: vCPUs, its I/O thread pool (up to 64), RCU, ... */
#define CG_PERIOD_US 100000

static const char *const ctrl_name[CG__CTRLS] = {"memory", "pids", "cpu"};

void vmm_limits_for(const struct vmm_cgroups *cg, unsigned cpus, unsigned mem_mib, bool tcg, struct vmm_limits *l)
{
	uint64_t overhead =
	    cg->overhead_mib >= 0 ? (uint64_t)cg->overhead_mib : CG_OVERHEAD_MIB + (tcg ? CG_TCG_CODE_MIB : 0);
	l->mem_bytes = ((uint64_t)mem_mib + overhead + mem_mib / 16) << 20;
	l->pids = CG_TASKS;
	l->cpu_period_us = CG_PERIOD_US;
	l->cpu_quota_us = (uint64_t)cpus * CG_PERIOD_US + CG_PERIOD_US / 2;
}

/* ---- finding the hierarchies ---- */

static bool has_token(const char *list, const char *tok, const char *seps)
{
	size_t n = strlen(tok);
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, seps);
		if (len == n && strncmp(p, tok, n) == 0)
			return true;
		p += len;
		p += *p != '\0';
	}
	return false;
}

/* The mount point of a cgroup2 (ctrl NULL) or of the v1 hierarchy holding ctrl. */
static bool find_mount(const char *ctrl, char *out, size_t len)
{
	char line[1024];
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	while (f && !found && fgets(line, sizeof(line), f)) {
		char mnt[512], type[32], opts[512];
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 ||
		    sscanf(dash + 3, "%31s %*s %511s", type, opts) != 2)
			continue;
		if (ctrl ? strcmp(type, "cgroup") == 0 && has_token(opts, ctrl, ",") : strcmp(type, "cgroup2") == 0)
			found = snprintf(out, len, "%s", mnt) < (int)len;
	}
	if (f)
		fclose(f);
	return found;
}

/* Our own cgroup's path in the v2 hierarchy (ctrl NULL) or in ctrl's v1 one. */
static bool own_path(const char *ctrl, char *out, size_t len)
{
	char line[1024];
	bool found = false;
	FILE *f = fopen("/proc/self/cgroup", "re");
	while (f && !found && fgets(line, sizeof(line), f)) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (!b)
			continue;
		*a = *b = '\0';
		b[1 + strcspn(b + 1, "\n")] = '\0';
		if (ctrl ? has_token(a + 1, ctrl, ",") : strcmp(line, "0") == 0 && a[1] == '\0')
			found = snprintf(out, len, "%s", strcmp(b + 1, "/") == 0 ? "" : b + 1) < (int)len;
	}
	if (f)
		fclose(f);
	return found;
}

static int put_at(int dir, const char *file, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int put_at(int dir, const char *file, const char *fmt, ...)
{
	char buf[96];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	int fd = openat(dir, file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	int rc = write(fd, buf, (size_t)n) == n ? 0 : -errno;
	close(fd);
	return rc;
}

static int put_path(const char *path, const char *file, const char *value)
{
	int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	int rc = put_at(dir, file, "%s", value);
	close(dir);
	return rc;
}

/* The parent's files the spawner writes: the directory (its children), cgroup.procs (the
 * common ancestor of a move), and the rest that exist of those named. */
static int hand_over(const char *path, uid_t owner, gid_t group)
{
	static const char *const files[] = {"", "cgroup.procs", "tasks", "cgroup.subtree_control"};
	char p[PATH_MAX];
	if (owner == geteuid())
		return 0;
	for (size_t i = 0; i < ARRAY_LEN(files); i++) {
		snprintf(p, sizeof(p), "%s%s%s", path, files[i][0] ? "/" : "", files[i]);
		if (chown(p, owner, group) < 0 && (errno != ENOENT || !files[i][0]))
			return -errno;
	}
	return 0;
}

/* Empty vm-* cgroups of an earlier run (a busy one holds a VMM still alive: kept). */
static void clear_stale(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, "vm-", 3) == 0 && e->d_type == DT_DIR)
			(void)unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
	}
	if (d)
		closedir(d);
}

/* Our cgroup holds us alone (anything else there would be left inside the VMs' parent). */
static bool holds_only_us(const char *path)
{
	char p[PATH_MAX + 16], line[32];
	snprintf(p, sizeof(p), "%s/cgroup.procs", path);
	FILE *f = fopen(p, "re");
	unsigned n = 0;
	bool us = false;
	while (f && fgets(line, sizeof(line), f)) {
		n++;
		us = us || strtol(line, NULL, 10) == (long)getpid();
	}
	if (f)
		fclose(f);
	return n == 1 && us;
}

static int prepare_v2(struct vmm_cgroups *cg, const char *tag, uid_t owner, gid_t group)
{
	char mnt[256], own[512], base[PATH_MAX], p[PATH_MAX + 32], ctrls[256] = "";
	if (!find_mount(NULL, mnt, sizeof(mnt)) || !own_path(NULL, own, sizeof(own))) {
		snprintf(cg->why, sizeof(cg->why), "no cgroup v2 hierarchy");
		return -1;
	}
	snprintf(base, sizeof(base), "%s%s", mnt, own);
	snprintf(p, sizeof(p), "%s/cgroup.controllers", base);
	FILE *f = fopen(p, "re");
	if (!f || !fgets(ctrls, sizeof(ctrls), f))
		ctrls[0] = '\0';
	if (f)
		fclose(f);
	ctrls[strcspn(ctrls, "\n")] = '\0';
	for (int c = 0; c < CG__CTRLS; c++)
		if (!has_token(ctrls, ctrl_name[c], " ")) {
			snprintf(cg->why, sizeof(cg->why),
				 "cgroup v2 gives this instance %s%.120s, not memory, pids and cpu",
				 ctrls[0] ? "only " : "no controller", ctrls);
			return -1;
		}
	bool delegated = access(base, W_OK) == 0 && holds_only_us(base);
	if (!delegated && geteuid() != 0) {
		snprintf(
		    cg->why, sizeof(cg->why),
		    "cgroup v2: %.120s is not delegated to this user alone (start it under a delegated cgroup, e.g. "
		    "systemd-run --user --scope -p Delegate=yes)",
		    own[0] ? own : "/");
		return -1;
	}
	if (!delegated) { /* root, in a cgroup shared with others: one of its own at the top */
		snprintf(base, sizeof(base), "%s/fcvm-%s", mnt, tag);
		if ((put_path(mnt, "cgroup.subtree_control", "+memory +pids +cpu") < 0) ||
		    (mkdir(base, 0755) < 0 && errno != EEXIST)) {
			snprintf(cg->why, sizeof(cg->why), "cgroup v2: cannot make %.200s: %s", base, strerror(errno));
			return -1;
		}
	}
	int rc = 0;
	snprintf(p, sizeof(p), "%s/instance", base);
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		rc = -errno;
	if (rc < 0 || (rc = put_path(p, "cgroup.procs", pid)) < 0 ||
	    (rc = put_path(base, "cgroup.subtree_control", "+memory +pids +cpu")) < 0 ||
	    (rc = hand_over(base, owner, group)) < 0) {
		snprintf(cg->why, sizeof(cg->why), "cgroup v2: cannot set up %.200s: %s", base, strerror(-rc));
		return -1;
	}
	clear_stale(base);
	snprintf(cg->origin, sizeof(cg->origin), "%.200s%.200s", mnt, own);
	snprintf(cg->path[0], sizeof(cg->path[0]), "%s", base);
	cg->made = !delegated;
	cg->dir[0] = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cg->dir[0] < 0)
		return -1;
	cg->dir[CG_PIDS] = cg->dir[CG_CPU] = cg->dir[0];
	cg->kind = CG_V2;
	return 0;
}

static int prepare_v1(struct vmm_cgroups *cg, const char *tag, uid_t owner, gid_t group)
{
	if (geteuid() != 0) {
		snprintf(cg->why, sizeof(cg->why), "the v1 hierarchies are root's (a private instance has no limits)");
		return -1;
	}
	for (int c = 0; c < CG__CTRLS; c++) {
		char mnt[256], own[512], base[PATH_MAX];
		if (!find_mount(ctrl_name[c], mnt, sizeof(mnt)) || !own_path(ctrl_name[c], own, sizeof(own))) {
			snprintf(cg->why, sizeof(cg->why), "no %s controller on v1 either", ctrl_name[c]);
			return -1;
		}
		snprintf(base, sizeof(base), "%s%s/fcvm-%s", mnt, own, tag);
		int rc = mkdir(base, 0755) < 0 && errno != EEXIST ? -errno : hand_over(base, owner, group);
		if (rc < 0) {
			snprintf(cg->why, sizeof(cg->why), "cgroup v1: cannot set up %.200s: %s", base, strerror(-rc));
			return -1;
		}
		clear_stale(base);
		snprintf(cg->path[c], sizeof(cg->path[c]), "%s", base);
		if ((cg->dir[c] = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
			return -1;
	}
	cg->kind = CG_V1;
	return 0;
}

static int overhead_from_env(void)
{
	uint64_t v;
	const char *env = getenv("FCVM_VMM_MEM_OVERHEAD_MIB");
	return env && parse_uint(env, 1u << 20, &v) ? (int)v : -1;
}

/* No cgroups (yet): kind CG_NONE, no directory. */
static void reset(struct vmm_cgroups *cg, int overhead_mib)
{
	memset(cg, 0, sizeof(*cg));
	for (int c = 0; c < CG__CTRLS; c++)
		cg->dir[c] = -1;
	cg->overhead_mib = overhead_mib;
}

void vmm_cgroup_prepare(struct vmm_cgroups *cg, const char *tag, uid_t owner, gid_t group)
{
	char v2_why[sizeof(cg->why)], v1_why[sizeof(cg->why)];
	reset(cg, overhead_from_env());
	if (prepare_v2(cg, tag, owner, group) == 0)
		return;
	snprintf(v2_why, sizeof(v2_why), "%s", cg->why);
	if (prepare_v1(cg, tag, owner, group) == 0)
		return;
	for (int c = 0; c < CG__CTRLS; c++) /* v1's, opened before one failed */
		if (cg->dir[c] >= 0)
			close(cg->dir[c]);
	snprintf(v1_why, sizeof(v1_why), "%s", cg->why);
	reset(cg, cg->overhead_mib);
	snprintf(cg->why, sizeof(cg->why), "%.150s; %.150s", v2_why, v1_why);
}

void vmm_cgroup_release(const struct vmm_cgroups *cg)
{
	char p[PATH_MAX + 16], pid[16];
	if (cg->kind == CG_NONE)
		return;
	if (cg->kind == CG_V2) { /* back where we came from: the leaf is then empty */
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if (put_path(cg->origin, "cgroup.procs", pid) < 0)
			return;
		snprintf(p, sizeof(p), "%s/instance", cg->path[0]);
		(void)rmdir(p);
	}
	for (int c = 0; c < (cg->kind == CG_V1 ? CG__CTRLS : 1); c++) {
		clear_stale(cg->path[c]);
		if (cg->kind == CG_V1 || cg->made)
			(void)rmdir(cg->path[c]); /* busy: a VMM outlived the instance; the next start sees it */
	}
}

/* ---- in the child ---- */

static int limit_v1(int dir, enum cg_ctrl c, const struct vmm_limits *l)
{
	int rc = 0;
	if (c == CG_MEMORY) {
		/* memory+swap is bounded by the same figure; it must never be below the limit */
		bool memsw = faccessat(dir, "memory.memsw.limit_in_bytes", F_OK, 0) == 0;
		if (memsw && (rc = put_at(dir, "memory.memsw.limit_in_bytes", "-1")) < 0)
			return rc;
		if ((rc = put_at(dir, "memory.limit_in_bytes", "%llu", (unsigned long long)l->mem_bytes)) < 0)
			return rc;
		if (memsw)
			rc = put_at(dir, "memory.memsw.limit_in_bytes", "%llu", (unsigned long long)l->mem_bytes);
		return rc;
	}
	if (c == CG_PIDS)
		return put_at(dir, "pids.max", "%u", l->pids);
	if ((rc = put_at(dir, "cpu.cfs_period_us", "%llu", (unsigned long long)l->cpu_period_us)) < 0)
		return rc;
	return put_at(dir, "cpu.cfs_quota_us", "%llu", (unsigned long long)l->cpu_quota_us);
}

static int limit_v2(int dir, const struct vmm_limits *l)
{
	int rc;
	if ((rc = put_at(dir, "memory.max", "%llu", (unsigned long long)l->mem_bytes)) < 0 ||
	    (rc = put_at(dir, "pids.max", "%u", l->pids)) < 0)
		return rc;
	return put_at(dir, "cpu.max", "%llu %llu", (unsigned long long)l->cpu_quota_us,
		      (unsigned long long)l->cpu_period_us);
}

int vmm_cgroup_enter(const struct vmm_cgroups *cg, unsigned slot, const struct vmm_limits *l, char *err, size_t len)
{
	char name[16];
	snprintf(name, sizeof(name), "vm-%u", slot);
	int n = cg->kind == CG_V1 ? CG__CTRLS : cg->kind == CG_V2 ? 1 : 0;
	for (int c = 0; c < n; c++) {
		const char *what = cg->kind == CG_V1 ? ctrl_name[c] : "v2";
		if (mkdirat(cg->dir[c], name, 0755) < 0 && errno != EEXIST) {
			snprintf(err, len, "cgroup %s/%s: %s", what, name, strerror(errno));
			return -errno;
		}
		int dir = openat(cg->dir[c], name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc;
		if (dir < 0) {
			snprintf(err, len, "cgroup %s/%s: %s", what, name, strerror(errno));
			return -errno;
		}
		rc = cg->kind == CG_V1 ? limit_v1(dir, (enum cg_ctrl)c, l) : limit_v2(dir, l);
		if (rc < 0)
			snprintf(err, len, "cgroup %s/%s: setting its limits: %s", what, name, strerror(-rc));
		else if ((rc = put_at(dir, "cgroup.procs", "0")) < 0)
			snprintf(err, len, "cgroup %s/%s: joining it: %s", what, name, strerror(-rc));
		close(dir);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void vmm_cgroup_describe(const struct vmm_cgroups *cg, const struct vmm_limits *l, char *buf, size_t len)
{
	if (cg->kind == CG_NONE) {
		snprintf(buf, len, "none: %s", cg->why);
		return;
	}
	int n = snprintf(buf, len, "cgroup %s at %.200s", cg->kind == CG_V1 ? "v1" : "v2", cg->path[0]);
	if (l && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ": memory %llu MiB, %u tasks, %llu.%llu CPUs",
			 (unsigned long long)(l->mem_bytes >> 20), l->pids,
			 (unsigned long long)(l->cpu_quota_us / l->cpu_period_us),
			 (unsigned long long)(l->cpu_quota_us % l->cpu_period_us * 10 / l->cpu_period_us));
}
