/* fcvm-uffdd: serves snapshot clones' memory over userfaultfd (docs/uffdd.md). Started by the
 * launcher with its channel to the supervisor on fd 3; each uffd_serve hands it a clone's
 * listening socket and its snapshot's memory file. One poll loop serves the channel, every
 * clone's handshake, faults and prefetch, and notices each VMM's end by its pidfd. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "helpers/common/helper.h"
#include "helpers/uffdd/uffdd.h"

static struct uffdd uffdd;

static void put_stats(struct pmsg *rep, const struct clone *c)
{
	struct precord *b = &rep->body;
	prec_set_str(rep, b, "state", clone_state_name(c->state));
	prec_set_uint(rep, b, "pid", (uint64_t)c->pid);
	prec_set_uint(rep, b, "faults", c->st.faults);
	prec_set_uint(rep, b, "copied", c->st.copied);
	prec_set_uint(rep, b, "zero", c->st.zero);
	prec_set_uint(rep, b, "prefetched", c->st.prefetched);
	prec_set_uint(rep, b, "removes", c->st.removes);
	prec_set_uint(rep, b, "removed", c->st.removed);
	prec_set_uint(rep, b, "retries", c->st.retries);
	prec_set_uint(rep, b, "recorded", c->st.recorded);
	if (c->state == C_FAILED && c->why[0])
		prec_set_str(rep, b, "why", c->why);
}

static void serve_serve(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	uint64_t pid = 0, record_ms = UFFDD_RECORD_MS, pages = 0, ws = 0;
	bool prefetch = true;
	char why[200];
	(void)h;
	prec_uint(&req->body, "pid", &pid);
	prec_uint(&req->body, "record_ms", &record_ms);
	prec_bool(&req->body, "prefetch", &prefetch);
	struct serve_args a = {
	    .vm = prec_str(&req->body, "vm"),
	    .key = prec_str(&req->body, "key"),
	    .pid = (pid_t)pid,
	    .lsock = req->fds[0],
	    .memfd = req->fds[1],
	    .record_ms = record_ms,
	    .prefetch = prefetch,
	};
	int rc = uffdd_serve(&uffdd, &a, &pages, &ws, why, sizeof(why));
	if (rc < 0) {
		int code = proto_code_from_errno(rc);
		if (code == PE_INVALID || code == PE_DENIED)
			log_audit("refused 'uffd_serve' for VM %s: %s", a.vm, why);
		pmsg_set_error(rep, code, "%s", why);
		return; /* the fds stay the request's: closed with it */
	}
	/* uffdd owns them now */
	pmsg_take_fd((struct pmsg *)req, 0);
	pmsg_take_fd((struct pmsg *)req, 1);
	prec_set_uint(rep, &rep->body, "pages", pages);
	prec_set_uint(rep, &rep->body, "working_set", ws);
}

static struct clone *find(const struct pmsg *req, struct pmsg *rep)
{
	const char *vm = prec_str(&req->body, "vm");
	struct clone *c = uffdd_find(&uffdd, vm);
	if (!c)
		pmsg_set_error(rep, PE_NOT_FOUND, "VM %s is not served here", vm);
	return c;
}

static void serve_stats(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	(void)h;
	struct clone *c = find(req, rep);
	if (c)
		put_stats(rep, c);
}

static void serve_stop(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	(void)h;
	struct clone *c = find(req, rep);
	if (!c)
		return;
	put_stats(rep, c); /* its figures as they end */
	if (!uffdd_stop(&uffdd, c))
		prec_set_bool(rep, &rep->body, "pending", true);
}

static const struct helper_op ops[] = {
    {OP_UFFD_SERVE, serve_serve},
    {OP_UFFD_STOP, serve_stop},
    {OP_UFFD_STATS, serve_stats},
};

/* The ring, before the filter that allows no other (reader.c) */
static int pre_sandbox(struct helper_ctx *h, int *keep)
{
	(void)h;
	int rc = reader_init(&uffdd.rd, READER_URING, 64);
	if (rc < 0)
		return rc;
	keep[0] = reader_fd(&uffdd.rd);
	return keep[0] >= 0 ? 1 : 0;
}

static int init(struct helper_ctx *h)
{
	(void)h;
	int rc = uffdd_init(&uffdd);
	if (rc == 0)
		log_info("memory files read with %s", reader_name(&uffdd.rd));
	return rc;
}

static int chan_ready(void *arg)
{
	return helper_serve_request(arg);
}

static int loop(struct helper_ctx *h)
{
	return uffdd_run(&uffdd, FCVM_HELPER_CHANNEL_FD, chan_ready, h);
}

int main(int argc, char **argv)
{
	static const struct helper_hooks hooks = {.pre_sandbox = pre_sandbox, .init = init, .loop = loop};
	return helper_main_hooks("uffdd", &policy_uffdd, ops, ARRAY_LEN(ops), &hooks, argc, argv);
}
