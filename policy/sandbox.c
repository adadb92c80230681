/* sandbox_enter: the stages in their fixed order (see sandbox.h), and the simple stages. */
#include <errno.h>
#include <linux/close_range.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "policy/sandbox.h"

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int sandbox_close_fds(const int *keep, size_t nkeep)
{
	int k[64] = {0};
	size_t n = 0;
	for (size_t i = 0; i < nkeep && n < sizeof(k) / sizeof(k[0]); i++)
		if (keep[i] > 2)
			k[n++] = keep[i];
	qsort(k, n, sizeof(k[0]), cmp_int);
	unsigned first = 3;
	for (size_t i = 0; i <= n; i++) {
		unsigned until = i < n ? (unsigned)k[i] : ~0u;
		if (until > first && close_range(first, until - 1, 0) < 0)
			return -errno;
		if (i < n)
			first = (unsigned)k[i] + 1;
	}
	return 0;
}

int sandbox_set_rlimits(const struct sandbox_policy *p)
{
	for (size_t i = 0; i < p->nrlimits; i++) {
		struct rlimit rl = {p->rlimits[i].soft, p->rlimits[i].hard};
		if (setrlimit(p->rlimits[i].resource, &rl) < 0)
			return -errno;
	}
	return 0;
}

int sandbox_unshare(const struct sandbox_policy *p)
{
	if (p->unshare_flags && unshare(p->unshare_flags) < 0)
		return -errno;
	return 0;
}

int sandbox_no_new_privs(void)
{
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
}

int sandbox_nondumpable(void)
{
	return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ? -errno : 0;
}

int sandbox_enter(const struct sandbox_policy *p, const struct sandbox_opts *o, char *err, size_t errlen)
{
	int rc;
#define STAGE(what, call)                                                                                              \
	do {                                                                                                           \
		if ((rc = (call)) < 0) {                                                                               \
			snprintf(err, errlen, "%s: %s: %s", p->name, what, strerror(-rc));                             \
			return -1;                                                                                     \
		}                                                                                                      \
	} while (0)
	STAGE("closing stray fds", sandbox_close_fds(o->keep_fds, o->nkeep));
	STAGE("rlimits", sandbox_set_rlimits(p));
	if (!o->skip_namespaces)
		STAGE("namespaces", sandbox_unshare(p));
	STAGE("dropping capabilities", sandbox_drop_caps(p, o->change_ids, o->uid, o->gid));
	STAGE("no_new_privs", sandbox_no_new_privs());
	STAGE("non-dumpable", sandbox_nondumpable());
	STAGE("seccomp", sandbox_seccomp(p));
#undef STAGE
	return 0;
}
