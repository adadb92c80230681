/* A client request served by one helper: the supervisor re-sends the (already validated)
 * fields under the helper's op, and returns the helper's answer under the client's op. */
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "supervisor/client.h"

struct relay {
	struct client *c;
	uint32_t id;
	enum proto_op op; /* the client's */
};

static void on_helper_reply(struct pmsg *hrep, void *arg)
{
	struct relay *r = arg;
	struct pmsg rep;
	pmsg_init(&rep, PK_REPLY, r->op, r->id);
	if (hrep->err_code != PE_OK)
		pmsg_set_error(&rep, hrep->err_code, "%s", hrep->err_msg);
	else if (prec_copy(&rep, &rep.body, &hrep->body) < 0)
		pmsg_set_error(&rep, PE_INTERNAL, "reply does not fit '%s'", proto_op(r->op)->name);
	client_send(r->c, &rep);
	pmsg_free(&rep);
	client_release(r->c);
	free(r);
}

void relay_to_helper(struct client *c, const struct pmsg *req, enum helper_id h, enum proto_op hop)
{
	struct relay *r = calloc(1, sizeof(*r));
	struct pmsg hreq;
	if (!r)
		abort();
	r->c = c;
	r->id = req->id;
	r->op = req->op->id;
	client_hold(c);
	pmsg_init(&hreq, PK_REQUEST, hop, 0);
	if (prec_copy(&hreq, &hreq.body, &req->body) < 0) {
		pmsg_free(&hreq);
		peer_fail_reply(on_helper_reply, r, hop, PE_INTERNAL, "request does not fit the helper's op");
		return;
	}
	/* fds the client sent (an image to import) go on to the helper, which checks them again */
	struct pmsg *owned = (struct pmsg *)req;
	for (unsigned i = 0; i < req->nfds; i++) {
		int fd = pmsg_take_fd(owned, i);
		if (fd >= 0 && pmsg_add_fd(&hreq, fd) < 0)
			close(fd);
	}
	helper_call(c->sup, h, &hreq, on_helper_reply, r);
	pmsg_free(&hreq);
}
