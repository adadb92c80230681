/* `make policy-dump`: each process's whole effective power, from the policies the build
 * compiles in (capabilities, rlimits, settings, the flattened seccomp rules as policyc
 * resolved them) and, for what no policy file holds (uid, namespaces, filesystem view), the
 * table below, which says where in the code each is enforced. docs/architecture.md links it. */
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "policy/sandbox.h"

struct proc_desc {
	const char *policy, *binary, *uid_system, *uid_rootless, *namespaces, *filesystem;
};

static const struct proc_desc procs[] = {
    {"launcher", "fcvm-launcher (launcher/launcher.c)", FCVM_LAUNCHER_USER, "the user", "the host's",
     "the state directory's fd (removes nothing but its socket); no path is opened once sandboxed"},
    {"spawner", "fcvm-launcher, forked before the launcher's filter (launcher/spawner.c)", FCVM_LAUNCHER_USER,
     "the user", "the host's; makes each child's (below)",
     "the programs' fds, the data directory's fd (for stored), the control socket, STATE_DIR/vms"},
    {"supervisor", "fcvm-supervisor (supervisor/)", FCVM_SUPERVISOR_USER, "the user", "the host's",
     "an empty read-only tmpfs root showing /proc and the guest assets (read-only); STATE_DIR/vms "
     "as an fd from the launcher"},
    {"netd", "fcvm-netd (helpers/netd/)", FCVM_NETD_USER, "root in a user namespace of its own",
     "the host's network; each VM's user+network namespace, made by a child",
     "/dev/net/tun, /proc/self/ns, "
     "its VM namespaces' /proc/sys/net/ipv4"},
    {"stored", "fcvm-stored (helpers/stored/)", FCVM_STORED_USER " (owns the data directory)",
     "root in a user namespace of its own", "the host's",
     "an empty read-only tmpfs root; beneath the data directory's fd (fd 4) alone: openat2 "
     "RESOLVE_BENEATH, and Landlock where the kernel has it"},
    {"uffdd", "fcvm-uffdd (helpers/uffdd/)", FCVM_UFFDD_USER, "root in a user namespace of its own", "the host's",
     "an empty read-only tmpfs root: fds from its channel alone"},
    {"vmm_qemu", "qemu-system-x86_64 (launcher/vmm_jail.c)",
     "one uid per VM slot from " FCVM_VMM_USER "'s range in " FCVM_SUBUID_FILE " (else " FCVM_VMM_USER ")",
     "the user, in a user namespace of its own", "user, mount, network, IPC, UTS and PID of its own (PID 1, alone)",
     "a tmpfs root: /usr, its own /proc, /dev/{null,zero,random,urandom,kvm}; every disk, socket and "
     "the kernel as fds"},
};

static const char *op_name(enum scmp_compare op)
{
	switch (op) {
	case SCMP_CMP_EQ:
		return "==";
	case SCMP_CMP_NE:
		return "!=";
	case SCMP_CMP_MASKED_EQ:
		return "&";
	default:
		return "?";
	}
}

static const char *rlimit_name(int r)
{
	switch (r) {
	case RLIMIT_CORE:
		return "CORE";
	case RLIMIT_NOFILE:
		return "NOFILE";
	case RLIMIT_NPROC:
		return "NPROC";
	case RLIMIT_MEMLOCK:
		return "MEMLOCK";
	case RLIMIT_AS:
		return "AS";
	default:
		return "?";
	}
}

static void print_caps(const struct sandbox_policy *p)
{
	printf("capabilities: ");
	if (!p->ncaps)
		printf("none");
	for (size_t i = 0; i < p->ncaps; i++) {
		char *name = cap_to_name(p->caps[i]);
		printf("%s%s", i ? " " : "", name ? name : "?");
		cap_free(name);
	}
	printf("%s\n", p->allow_ambient ? " (hands them on through the ambient set)" : "");
}

static void print_rules(const struct sandbox_policy *p)
{
	static const char *const action[] = {"allow", "enosys", "eperm"};
	if (p->unfiltered) {
		printf("seccomp:      none (policy/%s.policy says why)\n", p->name);
		return;
	}
	printf("seccomp:      kill the process on anything else; i386/x32 killed; %zu rules:\n", p->nrules);
	for (size_t i = 0; i < p->nrules; i++) {
		const struct sandbox_rule *r = &p->rules[i];
		printf("  %-6s %s", action[r->action], r->name);
		for (unsigned k = 0; k < r->nargs; k++) {
			const struct scmp_arg_cmp *a = &r->args[k];
			if (a->op == SCMP_CMP_MASKED_EQ)
				printf(" a%u & %#llx == %#llx", a->arg, (unsigned long long)a->datum_a,
				       (unsigned long long)a->datum_b);
			else
				printf(" a%u %s %#llx", a->arg, op_name(a->op), (unsigned long long)a->datum_a);
		}
		printf("\n");
	}
}

int main(void)
{
	for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
		const struct proc_desc *d = &procs[i];
		const struct sandbox_policy *p = sandbox_policy_by_name(d->policy);
		if (!p) {
			fprintf(stderr, "policy-dump: no policy %s\n", d->policy);
			return 1;
		}
		printf("== %s: %s\n", p->name, d->binary);
		printf("uid:          system mode: %s; rootless: %s\n", d->uid_system, d->uid_rootless);
		print_caps(p);
		printf("namespaces:   %s\n", d->namespaces);
		printf("filesystem:   %s\n", d->filesystem);
		printf("rlimits:     ");
		for (size_t k = 0; k < p->nrlimits; k++)
			printf(" %s=%llu/%llu", rlimit_name(p->rlimits[k].resource),
			       (unsigned long long)p->rlimits[k].soft, (unsigned long long)p->rlimits[k].hard);
		printf("%s\n", p->nrlimits ? "" : " none");
		for (size_t k = 0; k < p->nsettings; k++)
			printf("setting:      %s = %s\n", p->settings[k].name, p->settings[k].value);
		print_rules(p);
		printf("\n");
	}
	return 0;
}
