/* The runtime every privileged helper shares: argument parsing, its sandbox, and a blocking
 * request loop on its channel (fd 3) with a dispatch table of the operations it serves.
 * `ping` is served by every helper; anything not in the table is refused and audited. */
#ifndef FCVM_HELPER_H
#define FCVM_HELPER_H

#include "policy/sandbox.h"
#include "proto/proto.h"

struct helper_ctx {
	void *state;	      /* the helper's own (e.g. stored's open store) */
	const char *name;     /* "netd" ... */
	const char *mode;     /* "system" | "rootless" */
	const char *instance; /* --instance: which supervisor's objects are this helper's */
	uint64_t started_ms;
};

/* Serve req: fill rep (initialised as a reply to req) or make it an error with
 * pmsg_set_error. The return value is ignored; errors travel in rep. */
typedef void (*helper_handler)(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep);

struct helper_op {
	enum proto_op op;
	helper_handler fn;
};

/* Make rep an error from a negative errno: proto_code_from_errno's code (denied is audited,
 * internal logged as an error), with "what: strerror" as the message. */
void helper_fail(struct helper_ctx *h, struct pmsg *rep, int neg_errno, const char *what);

/* Runs once, inside the sandbox, before the first request. Returns 0 or -errno. */
typedef int (*helper_init)(struct helper_ctx *h);

bool instance_tag_ok(const char *s);

/* main() of a helper. argv: --mode system|rootless [--uid N --gid N] [--instance TAG]
 * Its channel is fd 3; stored also gets the data directory as fd 4. */
int helper_main(const char *name, const struct sandbox_policy *policy, const struct helper_op *ops, size_t nops,
		helper_init init, int argc, char **argv);

#endif
