/* The seccomp stage: the policy's allowlist; anything else kills the whole process. */
#include <errno.h>

#include "policy/sandbox.h"

static uint32_t action_of(enum sandbox_action a)
{
	switch (a) {
	case SB_ALLOW:
		return SCMP_ACT_ALLOW;
	case SB_ENOSYS:
		return SCMP_ACT_ERRNO(ENOSYS);
	case SB_EPERM:
		return SCMP_ACT_ERRNO(EPERM);
	}
	return SCMP_ACT_KILL_PROCESS;
}

scmp_filter_ctx sandbox_build_filter(const struct sandbox_policy *p)
{
	/* The native architecture only (seccomp_init adds nothing else): i386 calls through
	 * int 0x80 and x32 calls hit the bad-arch action, which kills too. */
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int rc = -ENOMEM;

	if (!ctx)
		goto fail;
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0 ||
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1)) < 0)
		goto fail;
	for (size_t i = 0; i < p->nrules; i++) {
		const struct sandbox_rule *r = &p->rules[i];
		rc = -EINVAL;
		if (r->nr < 0 || r->nargs > 3) /* negative: a syscall this architecture lacks */
			goto fail;
		rc = seccomp_rule_add_exact_array(ctx, action_of(r->action), r->nr, r->nargs, r->args);
		if (rc < 0)
			goto fail;
	}
	return ctx;
fail:
	seccomp_release(ctx);
	errno = -rc;
	return NULL;
}

int sandbox_seccomp(const struct sandbox_policy *p)
{
	if (p->unfiltered)
		return -EINVAL; /* a policy without rules would allow nothing (or, wrongly built, everything) */
	scmp_filter_ctx ctx = sandbox_build_filter(p);
	if (!ctx)
		return -errno;
	int rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc < 0 ? rc : 0;
}
