#include <errno.h>
#include <stdlib.h>
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

/* Unlist pp and answer its caller with an error. */
static void fail_one(struct peer_pending *pp, const char *msg)
{
	struct peer *p = pp->peer;
	TAILQ_REMOVE(&p->pending, pp, link);
	event_free(pp->timer);
	struct pmsg r;
	pmsg_init(&r, PK_REPLY, OP_PING, pp->id);
	pmsg_set_error(&r, PE_UNAVAILABLE, "%s", msg);
	pp->cb(&r, pp->arg);
	pmsg_free(&r);
	free(pp);
}

static void fail_pending(struct peer *p)
{
	char msg[96];
	snprintf(msg, sizeof(msg), "%s went away before answering", p->name);
	/* fail_one unlists each; the analyzer does not follow TAILQ_REMOVE through tqe_prev */
	while (!TAILQ_EMPTY(&p->pending))
		fail_one(TAILQ_FIRST(&p->pending), msg); /* NOLINT(clang-analyzer-unix.Malloc) */
}

static void on_call_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct peer_pending *pp = arg;
	char msg[128];
	(void)fd;
	(void)what;
	snprintf(msg, sizeof(msg), "%s did not answer within %d ms", pp->peer->name, PEER_CALL_TIMEOUT_MS);
	log_warn("%s", msg);
	fail_one(pp, msg);
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
	fail_pending(p);
}

static void closed(struct peer *p)
{
	peer_close(p);
	if (p->on_closed)
		p->on_closed(p, p->arg);
}

static struct peer_pending *find_pending(struct peer *p, uint32_t id)
{
	struct peer_pending *pp;
	/* the analyzer does not follow TAILQ_REMOVE's unlink through tqe_prev */
	TAILQ_FOREACH (pp, &p->pending, link)
		if (pp->id == id) /* NOLINT(clang-analyzer-unix.Malloc) */
			return pp;
	return NULL;
}

static void handle_reply(struct peer *p, struct pmsg *m)
{
	struct peer_pending *pp = find_pending(p, m->id);
	if (!pp) {
		log_warn("%s: reply to unknown request id %u dropped", p->name, m->id);
		return;
	}
	TAILQ_REMOVE(&p->pending, pp, link);
	event_free(pp->timer);
	pp->cb(m, pp->arg);
	free(pp);
}

static void handle_request(struct peer *p, struct pmsg *m, const struct perr *e)
{
	struct pmsg rep;
	pmsg_init_reply(&rep, m);
	if (e->code != PE_OK || !p->on_request) {
		if (e->code != PE_OK)
			pmsg_set_error(&rep, e->code, "%s", e->msg);
		else
			pmsg_set_error(&rep, PE_NOT_IMPLEMENTED, "requests are not served here");
		log_audit("%s: refused request id=%u: %s", p->name, m->id, rep.err_msg);
	} else {
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
			handle_reply(p, &m);
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
	TAILQ_INIT(&p->pending);
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
	req->id = ++p->next_id;
	struct perr e;
	int rc = chan_send_msg(p->fd, req, &e);
	if (rc < 0) {
		char msg[300];
		snprintf(msg, sizeof(msg), "cannot send to %s: %s", p->name, rc == -EINVAL ? e.msg : strerror(-rc));
		peer_fail_reply(cb, arg, req->op->id, rc == -EINVAL ? PE_INVALID : PE_UNAVAILABLE, msg);
		return;
	}
	struct peer_pending *pp = calloc(1, sizeof(*pp));
	if (!pp)
		abort();
	pp->peer = p;
	pp->id = req->id;
	pp->cb = cb;
	pp->arg = arg;
	pp->timer = evtimer_new(p->base, on_call_timeout, pp);
	if (!pp->timer)
		abort();
	struct timeval tv = {PEER_CALL_TIMEOUT_MS / 1000, (PEER_CALL_TIMEOUT_MS % 1000) * 1000};
	evtimer_add(pp->timer, &tv);
	TAILQ_INSERT_TAIL(&p->pending, pp, link);
}
