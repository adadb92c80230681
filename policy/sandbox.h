/* Staged self-sandboxing. Each fcvm process enters its sandbox in one fixed order:
 *   1. close stray fds       (everything but stdio and the fds it was handed)
 *   2. rlimits               (from its policy)
 *   3. namespaces            (unshare the ones its policy lists; `root empty`: a mount
 *                             namespace whose root is an empty read-only tmpfs)
 *   4. drop capabilities     (bounding, inheritable, ambient cleared; securebits locked;
 *                             uid/gid changed if asked; permitted = effective = policy caps)
 *   5. PR_SET_NO_NEW_PRIVS   (then `landlock FD`: paths confined beneath that directory)
 *   6. non-dumpable          (no ptrace, no /proc/PID access by the same uid)
 *   7. seccomp               (the policy's allowlist; default kills the process)
 * The policy of each process is a readable file in policy/NAME.policy, compiled into C at
 * build time (policy/policyc.c) as `const struct sandbox_policy policy_NAME`.
 */
#ifndef FCVM_SANDBOX_H
#define FCVM_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <seccomp.h>
#include <sys/capability.h>

enum sandbox_action {
	SB_ALLOW,
	SB_ENOSYS, /* libc probes it and falls back (clone3, openat2, faccessat2, ...) */
	SB_EPERM,  /* refused quietly where a caller handles it */
};

struct sandbox_rule {
	int nr;		  /* syscall number (SCMP_SYS(name)) */
	const char *name; /* for messages */
	enum sandbox_action action;
	unsigned nargs;
	struct scmp_arg_cmp args[3];
};

struct sandbox_rlimit {
	int resource; /* RLIMIT_* */
	rlim_t soft, hard;
};

/* A path the empty root shows (stage 3), at the same place. */
struct sandbox_bind {
	const char *path;
	bool writable;
};

/* A `set NAME VALUE` line of a policy file. */
struct sandbox_setting {
	const char *name, *value;
};

struct sandbox_policy {
	const char *name;
	const cap_value_t *caps; /* capabilities kept (permitted = effective) */
	size_t ncaps;
	int unshare_flags; /* CLONE_NEW* entered at stage 3 */
	const struct sandbox_rlimit *rlimits;
	size_t nrlimits;
	const struct sandbox_setting *settings;
	size_t nsettings;
	const struct sandbox_rule *rules;
	size_t nrules;
	bool allow_ambient; /* leave SECBIT_NO_CAP_AMBIENT_RAISE unset: this process
			       hands capabilities to children it execs (the spawner) */
	bool unfiltered;    /* no seccomp filter (the spawner: see policy/spawner.policy):
			       sandbox_enter skips stage 7, sandbox_seccomp refuses it */
	bool empty_root;    /* stage 3: the root becomes an empty read-only tmpfs showing binds */
	const struct sandbox_bind *binds;
	size_t nbinds;
	bool landlock;	 /* after stage 5: every path access confined beneath landlock_fd */
	int landlock_fd; /* (Landlock, where the kernel has it) */
};

struct sandbox_opts {
	const int *keep_fds; /* fds kept open at stage 1 besides 0, 1, 2 */
	size_t nkeep;
	bool change_ids; /* switch to uid/gid at stage 4 (system mode) */
	uid_t uid;
	gid_t gid;
	bool skip_namespaces;	     /* caller already placed the process in its namespaces */
	const char *const *binds_ro; /* more paths its empty root shows, read-only (known at run time;
					one that does not exist is left out) */
	size_t nbinds_ro;
};

/* The value of a policy's `set NAME VALUE`, or NULL. */
const char *sandbox_setting(const struct sandbox_policy *p, const char *name);

/* Run all stages in order. Returns 0, or -1 with a message in err naming the stage. */
int sandbox_enter(const struct sandbox_policy *p, const struct sandbox_opts *o, char *err, size_t errlen);

/* The stages, for callers that must do work between them, and for tests. Each returns 0 or -errno. */
int sandbox_close_fds(const int *keep, size_t nkeep);
int sandbox_set_rlimits(const struct sandbox_policy *p);
int sandbox_unshare(const struct sandbox_policy *p);
/* Stage 3b (passt's isolate_prefork): a mount namespace whose root is an empty tmpfs showing
 * only the policy's binds and opts' read-only ones, then made read-only. Needs CAP_SYS_ADMIN
 * in the current user namespace; a process without it (a rootless supervisor) first enters a
 * user namespace of its own where its uid maps to itself. */
int sandbox_empty_root(const struct sandbox_policy *p, const struct sandbox_opts *o);
/* A user namespace of its own (plus the CLONE_NEW* in more_ns) where the caller is
 * inner_uid/inner_gid, its own uid/gid outside. 0 or -errno. (Mapping uid 0 of the host
 * needs CAP_SETFCAP: the spawner never runs as root.) */
int sandbox_userns(int more_ns, uid_t inner_uid, gid_t inner_gid);
/* After stage 5: Landlock confines every path access beneath dirfd. -EOPNOTSUPP where the
 * kernel has no Landlock (the caller may go on: the empty root still holds). */
int sandbox_landlock_beneath(int dirfd);
int sandbox_drop_caps(const struct sandbox_policy *p, bool change_ids, uid_t uid, gid_t gid);
int sandbox_no_new_privs(void);
int sandbox_nondumpable(void);
int sandbox_seccomp(const struct sandbox_policy *p);

/* In a child about to exec a helper: put caps in the inheritable and ambient sets so the
 * exec'd program (run as uid 0 under SECBIT_NOROOT, or any uid) starts with exactly them.
 * They must be in the permitted set. Returns 0 or -errno. */
int sandbox_pass_caps_on_exec(const cap_value_t *caps, size_t ncaps);

/* Build (not load) the policy's filter, e.g. to export or count rules. Caller seccomp_release()s. */
scmp_filter_ctx sandbox_build_filter(const struct sandbox_policy *p);

/* What the calling process looks like now (for status replies). */
struct sandbox_report {
	uint64_t capeff; /* effective capability mask (bit n = capability n) */
	int seccomp;	 /* 0 off, 1 strict, 2 filter */
	bool no_new_privs;
	bool dumpable;
};
int sandbox_report_self(struct sandbox_report *r);
/* Names of the capabilities in mask, comma-less: calls fn for each ("CAP_NET_ADMIN"...). */
void sandbox_cap_names(uint64_t mask, void (*fn)(const char *name, void *arg), void *arg);

/* The compiled-in policies. */
extern const struct sandbox_policy policy_supervisor;
extern const struct sandbox_policy policy_launcher;
extern const struct sandbox_policy policy_spawner;
extern const struct sandbox_policy policy_netd;
extern const struct sandbox_policy policy_stored;
extern const struct sandbox_policy policy_uffdd;
extern const struct sandbox_policy policy_vmm_qemu;
const struct sandbox_policy *sandbox_policy_by_name(const char *name);

#endif
