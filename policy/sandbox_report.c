/* What the calling process looks like now: for status replies, and for tests. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "policy/sandbox.h"

int sandbox_report_self(struct sandbox_report *r)
{
	/* capget itself, not libcap: all 64 bits, whatever this libcap knows of */
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(r, 0, sizeof(*r));
	if (capget(&h, d) < 0)
		return -errno;
	r->capeff = (uint64_t)d[0].effective | (uint64_t)d[1].effective << 32;
	/* PR_GET_SECCOMP answers 2 in filter mode (mode 1, strict, would have killed us) */
	r->seccomp = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
	int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	int dump = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	if (r->seccomp < 0 || nnp < 0 || dump < 0)
		return -errno;
	r->no_new_privs = nnp == 1;
	r->dumpable = dump != 0;
	return 0;
}

void sandbox_cap_names(uint64_t mask, void (*fn)(const char *name, void *arg), void *arg)
{
	for (cap_value_t c = 0; c < 64; c++) {
		char up[48];
		if (!(mask & (1ull << c)))
			continue;
		char *n = cap_to_name(c); /* "cap_net_admin", or "41" for one libcap does not know */
		if (n && strncmp(n, "cap_", 4) == 0) {
			size_t i;
			for (i = 0; i < sizeof(up) - 1 && n[i]; i++)
				up[i] = (char)toupper((unsigned char)n[i]);
			up[i] = '\0';
		} else {
			snprintf(up, sizeof(up), "CAP_%d", c);
		}
		cap_free(n);
		fn(up, arg);
	}
}
