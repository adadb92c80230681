/* sandbox_enter: the stages in their fixed order (see sandbox.h), and the simple stages. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "policy/sandbox.h"

int sandbox_close_fds(const int *keep, size_t nkeep)
{
	unsigned int first = 3;

	/* close_range() over each gap between kept fds, lowest first; no copy, no limit */
	for (;;) {
		long next = -1;
		for (size_t i = 0; i < nkeep; i++)
			if (keep[i] >= 0 && (unsigned int)keep[i] >= first && (next < 0 || keep[i] < next))
				next = keep[i];
		if (next < 0)
			return close_range(first, ~0U, 0) < 0 ? -errno : 0;
		if ((unsigned int)next > first && close_range(first, (unsigned int)next - 1, 0) < 0)
			return -errno;
		first = (unsigned int)next + 1;
	}
}

int sandbox_set_rlimits(const struct sandbox_policy *p)
{
	for (size_t i = 0; i < p->nrlimits; i++) {
		struct rlimit rl = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
		if (setrlimit(p->rlimits[i].resource, &rl) < 0)
			return -errno;
	}
	return 0;
}

/* Needs CAP_SYS_ADMIN in the current user namespace: policies list namespaces only for
 * processes that have it (see docs/policy.md); others get theirs from the launcher. */
int sandbox_unshare(const struct sandbox_policy *p)
{
	if (p->unshare_flags && unshare(p->unshare_flags) < 0)
		return -errno;
	return 0;
}

int sandbox_no_new_privs(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? 0 : -EPERM;
}

int sandbox_nondumpable(void)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : -EPERM;
}

const char *sandbox_setting(const struct sandbox_policy *p, const char *name)
{
	for (size_t i = 0; i < p->nsettings; i++)
		if (strcmp(p->settings[i].name, name) == 0)
			return p->settings[i].value;
	return NULL;
}

int sandbox_enter(const struct sandbox_policy *p, const struct sandbox_opts *o, char *err, size_t errlen)
{
	static const struct sandbox_opts none;
	const char *stage;
	int rc;

	if (!o)
		o = &none;
	if ((rc = sandbox_close_fds(o->keep_fds, o->nkeep)) < 0)
		stage = "1 (closing stray fds)";
	else if ((rc = sandbox_set_rlimits(p)) < 0)
		stage = "2 (rlimits)";
	else if (!o->skip_namespaces && (rc = sandbox_unshare(p)) < 0)
		stage = "3 (namespaces)";
	else if (p->empty_root && (rc = sandbox_empty_root(p, o)) < 0)
		stage = "3 (empty root)";
	else if ((rc = sandbox_drop_caps(p, o->change_ids, o->uid, o->gid)) < 0)
		stage = "4 (capabilities)";
	else if ((rc = sandbox_no_new_privs()) < 0)
		stage = "5 (no_new_privs)";
	else if (p->landlock && (rc = sandbox_landlock_beneath(p->landlock_fd)) < 0 && rc != -EOPNOTSUPP)
		stage = "5 (landlock)";
	else if ((rc = sandbox_nondumpable()) < 0)
		stage = "6 (non-dumpable)";
	else if (!p->unfiltered && (rc = sandbox_seccomp(p)) < 0)
		stage = "7 (seccomp)";
	else
		return 0;
	if (err && errlen)
		snprintf(err, errlen, "%s sandbox, stage %s: %s", p->name, stage, strerror(-rc));
	return -1;
}
