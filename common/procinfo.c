#include <unistd.h>

#include "common/procinfo.h"
#include "policy/sandbox.h"

struct cap_names_ctx {
	struct pmsg *m;
	struct precord *r;
	int rc;
};

static void add_cap_name(const char *name, void *arg)
{
	struct cap_names_ctx *c = arg;
	if (prec_add_str(c->m, c->r, "caps", name) < 0)
		c->rc = -1;
}

int procinfo_fill(struct pmsg *m, struct precord *r, const char *name, const char *mode, uint64_t started_ms)
{
	struct sandbox_report rep;
	if (sandbox_report_self(&rep) < 0)
		return -1;
	struct cap_names_ctx c = {m, r, 0};
	int rc = prec_set_str(m, r, "name", name);
	rc |= prec_set_uint(m, r, "pid", (uint64_t)getpid());
	rc |= prec_set_uint(m, r, "uid", (uint64_t)getuid());
	rc |= prec_set_uint(m, r, "gid", (uint64_t)getgid());
	rc |= prec_set_uint(m, r, "capeff", rep.capeff);
	sandbox_cap_names(rep.capeff, add_cap_name, &c);
	rc |= c.rc;
	rc |= prec_set_uint(m, r, "seccomp", (uint64_t)rep.seccomp);
	rc |= prec_set_bool(m, r, "no_new_privs", rep.no_new_privs);
	rc |= prec_set_bool(m, r, "dumpable", rep.dumpable);
	rc |= prec_set_str(m, r, "mode", mode);
	rc |= prec_set_uint(m, r, "started_ms", started_ms);
	return rc ? -1 : 0;
}
