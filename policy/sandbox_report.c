/* What the calling process looks like now: for status replies, and for tests. */
#include <ctype.h>
#include <string.h>
#include <sys/prctl.h>

#include "policy/sandbox.h"

int sandbox_report_self(struct sandbox_report *r)
{
	cap_t cur = cap_get_proc();
	if (!cur)
		return -1;
	r->capeff = 0;
	for (cap_value_t c = 0; c <= CAP_LAST_CAP && c < 64; c++) {
		cap_flag_value_t v = CAP_CLEAR;
		cap_get_flag(cur, c, CAP_EFFECTIVE, &v);
		if (v == CAP_SET)
			r->capeff |= 1ull << c;
	}
	cap_free(cur);
	r->seccomp = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
	r->no_new_privs = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
	r->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1;
	return r->seccomp < 0 ? -1 : 0;
}

void sandbox_cap_names(uint64_t mask, void (*fn)(const char *name, void *arg), void *arg)
{
	for (cap_value_t c = 0; c <= CAP_LAST_CAP && c < 64; c++) {
		if (!(mask & (1ull << c)))
			continue;
		char *n = cap_to_name(c), up[48];
		size_t i;
		if (!n)
			continue;
		for (i = 0; i < sizeof(up) - 1 && n[i]; i++)
			up[i] = (char)toupper((unsigned char)n[i]);
		up[i] = '\0';
		cap_free(n);
		fn(up, arg);
	}
}
