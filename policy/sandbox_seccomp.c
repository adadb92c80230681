/* The seccomp stage: the policy's allowlist; anything else kills the whole process. */
#include <errno.h>

#include "policy/sandbox.h"

scmp_filter_ctx sandbox_build_filter(const struct sandbox_policy *p)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return NULL;
	/* Native arch only: i386 (int 0x80) and x32 calls hit the bad-arch action. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1) < 0)
		goto fail;
	for (size_t i = 0; i < p->nrules; i++) {
		const struct sandbox_rule *r = &p->rules[i];
		uint32_t act = r->action == SB_ALLOW	? SCMP_ACT_ALLOW
			       : r->action == SB_ENOSYS ? SCMP_ACT_ERRNO(ENOSYS)
							: SCMP_ACT_ERRNO(EPERM);
		if (seccomp_rule_add_array(ctx, act, r->nr, r->nargs, r->args) < 0)
			goto fail;
	}
	return ctx;
fail:
	seccomp_release(ctx);
	return NULL;
}

int sandbox_seccomp(const struct sandbox_policy *p)
{
	scmp_filter_ctx ctx = sandbox_build_filter(p);
	if (!ctx)
		return -EINVAL;
	int rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc;
}
