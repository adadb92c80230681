/* Capabilities: keep exactly the policy's, lock them in, optionally switch uid/gid. */
#include <errno.h>
#include <grp.h>
#include <linux/securebits.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "policy/sandbox.h"

static bool wanted(const struct sandbox_policy *p, cap_value_t c)
{
	for (size_t i = 0; i < p->ncaps; i++)
		if (p->caps[i] == c)
			return true;
	return false;
}

static bool have_effective(cap_value_t c)
{
	cap_flag_value_t v = CAP_CLEAR;
	cap_t cur = cap_get_proc();
	if (cur) {
		cap_get_flag(cur, c, CAP_EFFECTIVE, &v);
		cap_free(cur);
	}
	return v == CAP_SET;
}

/* Set permitted = effective = (policy caps we actually hold), inheritable empty. */
static int set_caps(const struct sandbox_policy *p)
{
	cap_t cur = cap_get_proc(), next = cap_init();
	int rc = 0;
	if (!cur || !next) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < p->ncaps; i++) {
		cap_flag_value_t v = CAP_CLEAR;
		cap_get_flag(cur, p->caps[i], CAP_PERMITTED, &v);
		if (v != CAP_SET)
			continue; /* e.g. an unprivileged launcher: nothing to keep */
		cap_set_flag(next, CAP_PERMITTED, 1, &p->caps[i], CAP_SET);
		cap_set_flag(next, CAP_EFFECTIVE, 1, &p->caps[i], CAP_SET);
	}
	if (cap_set_proc(next) < 0) {
		rc = -errno;
		goto out;
	}
	/* verify: nothing outside the policy is left */
	cap_free(cur);
	cur = cap_get_proc();
	for (cap_value_t c = 0; cur && c <= CAP_LAST_CAP; c++) {
		cap_flag_value_t e = CAP_CLEAR, pr = CAP_CLEAR, in = CAP_CLEAR;
		cap_get_flag(cur, c, CAP_EFFECTIVE, &e);
		cap_get_flag(cur, c, CAP_PERMITTED, &pr);
		cap_get_flag(cur, c, CAP_INHERITABLE, &in);
		if (in == CAP_SET || ((e == CAP_SET || pr == CAP_SET) && !wanted(p, c)))
			rc = -EPERM;
	}
out:
	cap_free(cur);
	cap_free(next);
	return rc;
}

int sandbox_drop_caps(const struct sandbox_policy *p, bool change_ids, uid_t uid, gid_t gid)
{
	if (have_effective(CAP_SETPCAP)) {
		/* Bounding set: nothing beyond the policy can ever come back, even via exec. */
		for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++)
			if (!wanted(p, c) && CAP_IS_SUPPORTED(c) && cap_drop_bound(c) < 0)
				return -errno;
		/* NOROOT: uid 0 gains nothing by exec. NO_SETUID_FIXUP: the uid switch below keeps
		 * the caps we keep on purpose. All locked, so no later code can undo them. */
		unsigned bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
				SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED;
		if (!p->allow_ambient)
			bits |= SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
		if (cap_set_secbits(bits) < 0)
			return -errno;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return -errno;
	if (change_ids) {
		if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
			return -errno;
		uid_t r, e, s;
		gid_t rg, eg, sg;
		if (getresuid(&r, &e, &s) < 0 || r != uid || e != uid || s != uid || getresgid(&rg, &eg, &sg) < 0 ||
		    rg != gid || eg != gid || sg != gid)
			return -EPERM;
	}
	return set_caps(p);
}

int sandbox_pass_caps_on_exec(const cap_value_t *caps, size_t ncaps)
{
	cap_t cur = cap_get_proc();
	if (!cur)
		return -ENOMEM;
	cap_clear_flag(cur, CAP_INHERITABLE);
	int rc =
	    cap_set_flag(cur, CAP_INHERITABLE, (int)ncaps, caps, CAP_SET) < 0 || cap_set_proc(cur) < 0 ? -errno : 0;
	cap_free(cur);
	for (size_t i = 0; rc == 0 && i < ncaps; i++)
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, caps[i], 0, 0) < 0)
			rc = -errno;
	return rc;
}
