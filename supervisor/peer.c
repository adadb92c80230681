#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "proto/chan.h"
#include "supervisor/peer.h"

void peer_fail_reply(peer_reply_cb cb, void *arg, enum proto_op op, int code, const char *msg)
{
	struct pmsg r;
	pmsg_init(&r, PK_REPLY, op, 0);
	pmsg_set_error(&r, code, "%s", msg);
	cb(&r, arg);
	pmsg_free(&r);
}

void peer_close(struct peer *p)
{
	if (p->ev) {
		event_free(p->ev);
		p->ev = NULL;
	}
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	char msg[96];
	snprintf(msg, sizeof(msg), "%s went away before answering", p->name);
	pending_fail_all(&p->calls, PE_UNAVAILABLE, msg);
}

static void closed(struct peer *p)
{
	peer_close(p);
	if (p->on_closed)
		p->on_closed(p, p->arg);
}

static void handle_request(struct peer *p, struct pmsg *m, const struct perr *e)
{
	struct pmsg rep;
	if (e->code != PE_OK || !p->on_request) {
		if (e->code != PE_OK)
			pmsg_refuse(&rep, m, e->code, "%s", e->msg);
		else
			pmsg_refuse(&rep, m, PE_NOT_IMPLEMENTED, "requests are not served here");
		log_audit("%s: refused request id=%u: %s", p->name, m->id, rep.err_msg);
	} else {
		pmsg_init_reply(&rep, m);
		p->on_request(p, m, &rep, p->arg);
	}
	struct perr se;
	int rc = chan_send_msg(p->fd, &rep, &se);
	if (rc < 0)
		log_err("%s: reply not sent: %s %s", p->name, strerror(-rc), rc == -EINVAL ? se.msg : "");
	pmsg_free(&rep);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct peer *p = arg;
	(void)fd;
	(void)what;
	/* Drain what is there; the socket is non-blocking. */
	for (int budget = 64; budget > 0 && p->fd >= 0; budget--) {
		struct pmsg m;
		struct perr e = {0};
		int r = chan_recv_msg(p->fd, &m, &e);
		if (r == -EAGAIN)
			return;
		if (r <= 0) {
			if (r < 0)
				log_warn("%s: channel error: %s", p->name, strerror(-r));
			closed(p);
			return;
		}
		if (e.code == PE_MALFORMED) {
			log_audit("%s: malformed frame (%s); closing the channel", p->name, e.msg);
			pmsg_free(&m);
			closed(p);
			return;
		}
		if (m.kind == PK_REPLY) {
			if (e.code != PE_OK) {
				/* A reply that breaks the schema: answer the caller with the reason. */
				pmsg_set_error(&m, PE_INVALID, "%s sent an invalid reply: %s", p->name, e.msg);
			}
			if (!pending_complete(&p->calls, &m))
				log_warn("%s: reply to unknown request id %u dropped", p->name, m.id);
		} else {
			handle_request(p, &m, &e);
		}
		pmsg_free(&m);
	}
}

int peer_open(struct peer *p, struct event_base *base, const char *name, int fd, peer_request_cb on_request,
	      peer_closed_cb on_closed, void *arg)
{
	p->base = base;
	p->name = name;
	p->fd = fd;
	p->on_request = on_request;
	p->on_closed = on_closed;
	p->arg = arg;
	pending_init(&p->calls, base, name);
	evutil_make_socket_nonblocking(fd);
	p->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, p);
	if (!p->ev || event_add(p->ev, NULL) < 0) {
		peer_close(p);
		return -1;
	}
	return 0;
}

void peer_call(struct peer *p, struct pmsg *req, peer_reply_cb cb, void *arg)
{
	if (p->fd < 0) {
		char msg[96];
		snprintf(msg, sizeof(msg), "%s is down", p->name);
		peer_fail_reply(cb, arg, req->op->id, PE_UNAVAILABLE, msg);
		return;
	}
	req->id = pending_add(&p->calls, PEER_CALL_TIMEOUT_MS, cb, arg);
	struct perr e;
	int rc = chan_send_msg(p->fd, req, &e);
	if (rc < 0) {
		char msg[300];
		snprintf(msg, sizeof(msg), "cannot send to %s: %s", p->name, rc == -EINVAL ? e.msg : strerror(-rc));
		pending_fail(&p->calls, req->id, rc == -EINVAL ? PE_INVALID : PE_UNAVAILABLE, msg);
	}
}
