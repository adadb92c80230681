#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/procinfo.h"
#include "common/util.h"
#include "helpers/common/helper.h"
#include "proto/chan.h"

struct helper_args {
	const char *mode;
	const char *instance;
	bool change_ids;
	uid_t uid;
	gid_t gid;
};

/* 1-8 of [a-z0-9]: it names kernel objects (nftables tables, link aliases). */
bool instance_tag_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 8)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

static int parse_args(int argc, char **argv, struct helper_args *a)
{
	static const struct option opts[] = {
	    {"mode", required_argument, NULL, 'm'},
	    {"uid", required_argument, NULL, 'u'},
	    {"gid", required_argument, NULL, 'g'},
	    {"instance", required_argument, NULL, 'i'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	bool have_uid = false, have_gid = false;
	int c;
	memset(a, 0, sizeof(*a));
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (strcmp(optarg, "system") != 0 && strcmp(optarg, "rootless") != 0)
				return -1;
			a->mode = optarg;
			break;
		case 'u':
			if (!parse_uint(optarg, UINT32_MAX - 1, &v))
				return -1;
			a->uid = (uid_t)v;
			have_uid = true;
			break;
		case 'g':
			if (!parse_uint(optarg, UINT32_MAX - 1, &v))
				return -1;
			a->gid = (gid_t)v;
			have_gid = true;
			break;
		case 'i':
			if (!instance_tag_ok(optarg))
				return -1;
			a->instance = optarg;
			break;
		default:
			return -1;
		}
	}
	if (!a->mode || optind != argc || have_uid != have_gid)
		return -1;
	a->change_ids = have_uid;
	return 0;
}

void helper_fail(struct helper_ctx *h, struct pmsg *rep, int neg_errno, const char *what)
{
	int code = proto_code_from_errno(neg_errno);
	(void)h;
	if (code == PE_DENIED)
		log_audit("refused '%s': %s: %s", rep->op->name, what, strerror(-neg_errno));
	else if (code == PE_INTERNAL)
		log_err("'%s' failed: %s: %s", rep->op->name, what, strerror(-neg_errno));
	pmsg_set_error(rep, code, "%s: %s", what, strerror(-neg_errno));
}

static void serve_ping(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	if (procinfo_fill(rep, &rep->body, h->name, h->mode, h->started_ms) < 0)
		pmsg_set_error(rep, PE_INTERNAL, "%s: cannot describe itself", h->name);
}

static helper_handler find_handler(const struct helper_op *ops, size_t nops, enum proto_op op)
{
	if (op == OP_PING)
		return serve_ping;
	for (size_t i = 0; i < nops; i++)
		if (ops[i].op == op)
			return ops[i].fn;
	return NULL;
}

static int send_reply(struct pmsg *rep)
{
	struct perr e;
	int rc = chan_send_msg(FCVM_HELPER_CHANNEL_FD, rep, &e);
	if (rc == -EINVAL) {
		/* Our own reply broke the schema: a bug here, not the peer's fault. */
		log_err("reply to '%s' does not fit the schema: %s", rep->op->name, e.msg);
		struct pmsg err;
		pmsg_refuse(&err, rep, PE_INTERNAL, "reply does not fit the schema");
		rc = chan_send_msg(FCVM_HELPER_CHANNEL_FD, &err, NULL);
		pmsg_free(&err);
	}
	return rc;
}

/* Answer one frame. Returns 0 to go on, -1 to close the channel (and exit). */
static int handle_frame(struct helper_ctx *h, const struct helper_op *ops, size_t nops, struct pmsg *req,
			const struct perr *e)
{
	if (e->code == PE_MALFORMED) {
		log_audit("malformed frame from the supervisor: %s; closing the channel", e->msg);
		return -1;
	}
	if (req->kind != PK_REQUEST) {
		log_audit("unexpected message kind %u; closing the channel", req->kind);
		return -1;
	}
	struct pmsg rep;
	int rc;
	helper_handler fn = e->code == PE_OK ? find_handler(ops, nops, req->op->id) : NULL;
	if (e->code != PE_OK) {
		/* op unknown or body invalid: refuse, with the decoder's reason */
		log_audit("refused request id=%u: %s: %s", req->id, proto_err_name(e->code), e->msg);
		pmsg_refuse(&rep, req, e->code, "%s", e->msg);
	} else if (!fn) {
		log_audit("refused '%s' id=%u: not served by %s", req->op->name, req->id, h->name);
		pmsg_refuse(&rep, req, PE_NOT_IMPLEMENTED, "%s does not serve '%s'", h->name, req->op->name);
	} else {
		pmsg_init_reply(&rep, req);
		fn(h, req, &rep);
	}
	rc = send_reply(&rep);
	pmsg_free(&rep);
	if (rc < 0 && rc != -EPIPE)
		log_err("send reply: %s", strerror(-rc));
	return rc < 0 ? -1 : 0;
}

int helper_serve_request(struct helper_ctx *h)
{
	struct pmsg req;
	struct perr e = {0};
	int r = chan_recv_msg(FCVM_HELPER_CHANNEL_FD, &req, &e);
	if (r == 0) {
		log_info("supervisor closed the channel");
		return 0;
	}
	if (r < 0) {
		log_audit("channel error: %s; closing it", strerror(-r));
		return -1;
	}
	int go_on = handle_frame(h, h->ops, h->nops, &req, &e);
	pmsg_free(&req);
	return go_on < 0 ? -1 : 1;
}

/* The blocking loop of the helpers that wait on their channel alone. */
static int blocking_loop(struct helper_ctx *h)
{
	for (;;) {
		int r = helper_serve_request(h);
		if (r <= 0)
			return r == 0 ? 0 : 1;
	}
}

int helper_main_hooks(const char *name, const struct sandbox_policy *policy, const struct helper_op *ops, size_t nops,
		      const struct helper_hooks *hooks, int argc, char **argv)
{
	struct helper_args a;
	struct helper_ctx h = {.name = name, .started_ms = now_realtime_ms(), .ops = ops, .nops = nops};
	char err[256];
	int rc;

	log_init(name);
	if (parse_args(argc, argv, &a) < 0) {
		log_err("usage: fcvm-%s --mode system|rootless [--uid N --gid N] [--instance TAG] (channel on fd %d)",
			name, FCVM_HELPER_CHANNEL_FD);
		return 2;
	}
	h.mode = a.mode;
	h.instance = a.instance ? a.instance : "0";
	int keep[2 + HELPER_PRE_FDS_MAX] = {FCVM_HELPER_CHANNEL_FD, FCVM_HELPER_DATA_FD};
	size_t nkeep = 2;
	if (hooks->pre_sandbox) {
		if ((rc = hooks->pre_sandbox(&h, keep + nkeep)) < 0) {
			log_err("cannot start: %s", strerror(-rc));
			return 1;
		}
		nkeep += (size_t)rc;
	}
	struct sandbox_opts so = {
	    .keep_fds = keep,
	    .nkeep = nkeep,
	    .change_ids = a.change_ids,
	    .uid = a.uid,
	    .gid = a.gid,
	};
	if (sandbox_enter(policy, &so, err, sizeof(err)) < 0) {
		log_err("sandbox: %s", err);
		return 1;
	}
	if (hooks->init && (rc = hooks->init(&h)) < 0) {
		log_err("cannot start: %s", strerror(-rc));
		return 1;
	}
	log_info("serving (%s mode, uid %u)", h.mode, (unsigned)getuid());
	return (hooks->loop ? hooks->loop : blocking_loop)(&h);
}

int helper_main(const char *name, const struct sandbox_policy *policy, const struct helper_op *ops, size_t nops,
		helper_init init, int argc, char **argv)
{
	struct helper_hooks hooks = {.init = init};
	return helper_main_hooks(name, policy, ops, nops, &hooks, argc, argv);
}
