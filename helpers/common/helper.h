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
	const struct helper_op *ops; /* its dispatch table (helper_serve_request) */
	size_t nops;
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

/* A helper that waits on more than its channel (uffdd: userfaultfds, sockets, pidfds) runs
 * its own loop instead of the blocking one: it polls the channel (fd 3) beside its other fds
 * and calls helper_serve_request when the channel is readable (one SOCK_SEQPACKET frame is
 * there, so the call does not block). Returns 1 to go on, 0 when the supervisor closed the
 * channel, -1 when the channel must be closed (malformed frame, channel error). */
int helper_serve_request(struct helper_ctx *h);

#define HELPER_PRE_FDS_MAX 4
struct helper_hooks {
	/* Before the sandbox, for what its filter will not allow again (uffdd's io_uring, set up
	 * once): fills keep with the fds it made, to be kept through stage 1; returns how many
	 * (at most HELPER_PRE_FDS_MAX) or -errno. */
	int (*pre_sandbox)(struct helper_ctx *h, int *keep);
	helper_init init;
	/* The loop, instead of the blocking one; its return value is the exit status. */
	int (*loop)(struct helper_ctx *h);
};
int helper_main_hooks(const char *name, const struct sandbox_policy *policy, const struct helper_op *ops, size_t nops,
		      const struct helper_hooks *hooks, int argc, char **argv);

#endif
