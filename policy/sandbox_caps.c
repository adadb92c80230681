/* Stage 4: keep exactly the policy's capabilities, lock them in, optionally switch uid/gid.
 * And the launcher's side of handing capabilities to a program it execs. */
#include <errno.h>
#include <grp.h>
#include <linux/securebits.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "policy/sandbox.h"

static bool in_list(const cap_value_t *caps, size_t n, cap_value_t c)
{
	for (size_t i = 0; i < n; i++)
		if (caps[i] == c)
			return true;
	return false;
}

static bool has_cap(cap_value_t c, cap_flag_t set)
{
	cap_flag_value_t v = CAP_CLEAR;
	cap_t cur = cap_get_proc();
	if (!cur)
		return false;
	if (cap_get_flag(cur, c, set, &v) < 0)
		v = CAP_CLEAR;
	cap_free(cur);
	return v == CAP_SET;
}

/* Bounding set down to the policy, then the securebits, all locked: uid 0 gains nothing
 * by exec (NOROOT), a uid switch keeps the caps we mean to keep (NO_SETUID_FIXUP), and
 * unless the policy hands caps to children, nothing can be raised into ambient. */
static int lock_down(const struct sandbox_policy *p)
{
	cap_value_t max = cap_max_bits(); /* what the kernel has, not what libcap was built with */
	unsigned bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
			SECBIT_KEEP_CAPS_LOCKED;

	for (cap_value_t c = 0; c < max; c++)
		if (!in_list(p->caps, p->ncaps, c) && cap_get_bound(c) == 1 && cap_drop_bound(c) < 0)
			return -errno;
	if (!p->allow_ambient)
		bits |= SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
	if (cap_set_secbits(bits) < 0)
		return -errno;
	/* verify: only the policy's caps are left to bound us, the bits are what we set */
	for (cap_value_t c = 0; c < max; c++)
		if (cap_get_bound(c) == 1 && !in_list(p->caps, p->ncaps, c))
			return -EPERM;
	return cap_get_secbits() == bits ? 0 : -EPERM;
}

static int change_ids(uid_t uid, gid_t gid)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return -errno;
	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return -errno;
	if (r != uid || e != uid || s != uid || rg != gid || eg != gid || sg != gid || getgroups(0, NULL) != 0)
		return -EPERM;
	return 0;
}

/* permitted = effective = the policy's caps this process holds, inheritable empty; then
 * read them back. A cap the policy lists but the process lacks (an unprivileged launcher,
 * a helper run by hand) is not an error: the process simply runs without it. */
static int set_caps(const struct sandbox_policy *p)
{
	cap_t want = cap_init(), got = NULL;
	int rc = -ENOMEM;

	if (!want)
		return rc;
	for (size_t i = 0; i < p->ncaps; i++) {
		if (!has_cap(p->caps[i], CAP_PERMITTED))
			continue;
		if (cap_set_flag(want, CAP_PERMITTED, 1, &p->caps[i], CAP_SET) < 0 ||
		    cap_set_flag(want, CAP_EFFECTIVE, 1, &p->caps[i], CAP_SET) < 0)
			goto out;
	}
	if (cap_set_proc(want) < 0) {
		rc = -errno;
		goto out;
	}
	got = cap_get_proc();
	if (!got)
		goto out;
	rc = cap_compare(got, want) == 0 ? 0 : -EPERM;
out:
	cap_free(got);
	cap_free(want);
	return rc;
}

int sandbox_drop_caps(const struct sandbox_policy *p, bool change, uid_t uid, gid_t gid)
{
	int rc;

	/* Without CAP_SETPCAP (an unprivileged process) the bounding set and the securebits
	 * cannot change: it holds nothing they would protect. */
	if (has_cap(CAP_SETPCAP, CAP_EFFECTIVE) && (rc = lock_down(p)) < 0)
		return rc;
	/* Ambient caps would survive into anything exec'd: always start from none. A launcher
	 * raises them per child, in the child (sandbox_pass_caps_on_exec). */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return -errno;
	if (change && (rc = change_ids(uid, gid)) < 0)
		return rc;
	if ((rc = set_caps(p)) < 0)
		return rc;
	for (cap_value_t c = 0, max = cap_max_bits(); c < max; c++)
		if (cap_get_ambient(c) > 0)
			return -EPERM;
	return 0;
}

int sandbox_pass_caps_on_exec(const cap_value_t *caps, size_t ncaps)
{
	cap_t cur;
	int rc = 0;

	if (ncaps > CAP_LAST_CAP + 1u)
		return -EINVAL;
	for (size_t i = 0; i < ncaps; i++)
		if (!has_cap(caps[i], CAP_PERMITTED))
			return -EPERM;
	/* inheritable = exactly caps, permitted and effective as they are */
	cur = cap_get_proc();
	if (!cur)
		return -ENOMEM;
	if (cap_clear_flag(cur, CAP_INHERITABLE) < 0 ||
	    (ncaps && cap_set_flag(cur, CAP_INHERITABLE, (int)ncaps, caps, CAP_SET) < 0) || cap_set_proc(cur) < 0)
		rc = -errno;
	cap_free(cur);
	if (rc == 0 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		rc = -errno;
	/* ambient: what a non-root exec (or root's under SECBIT_NOROOT) starts with */
	for (size_t i = 0; rc == 0 && i < ncaps; i++)
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, caps[i], 0, 0) < 0)
			rc = -errno;
	return rc;
}
