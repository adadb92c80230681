/* The control socket: accept, identify each client by SO_PEERCRED, read length-prefixed
 * frames, authorise each request against the dispatch table, answer.
 *
 * Fair to every user: at most MAX_CLIENTS_PER_UID connections each (root's count too, but
 * its own); a connection idle for IDLE_MS (nothing in flight, no session or log attached),
 * or with a frame half in for PARTIAL_MS, is closed; a client whose replies pile up unread
 * past OUT_PAUSE is not read from until they drain below OUT_RESUME (back-pressure: the
 * kernel then stops its writes), and is dropped past OUT_MAX. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "proto/chan.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/stream.h"
#include "supervisor/client.h"
#include "supervisor/vm.h"

#define MAX_CLIENTS	    1024
#define MAX_CLIENTS_PER_UID 64
#define MAX_INFLIGHT	    32 /* per client; past that requests are refused with PE_BUSY */
#define IDLE_MS		    120000
#define PARTIAL_MS	    10000
#define SWEEP_MS	    2000
#define OUT_PAUSE	    (1u << 20)
#define OUT_RESUME	    (64u << 10)
#define OUT_MAX		    (32u << 20)

void client_hold(struct client *c)
{
	c->refs++;
	c->inflight++;
}

static void client_unref(struct client *c)
{
	if (--c->refs == 0)
		free(c);
}

void client_release(struct client *c)
{
	c->inflight--;
	client_unref(c);
}

/* Close the connection (once): c stays allocated while requests hold it. */
static void client_drop(struct client *c)
{
	if (!c->bev)
		return;
	vm_client_gone(c->sup, c);
	event_free(c->rev);
	evbuffer_free(c->in);
	bufferevent_free(c->bev);
	c->bev = NULL;
	for (unsigned i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	c->nfds = 0;
	TAILQ_REMOVE(&c->sup->clients, c, link);
	c->sup->nclients--;
	client_unref(c);
}

void client_send(struct client *c, const struct pmsg *rep)
{
	if (!c->bev)
		return;
	unsigned char buf[STREAM_HDR + PROTO_MAX_FRAME];
	size_t len;
	struct perr e;
	if (stream_encode(rep, buf, sizeof(buf), &len, &e) < 0) {
		log_err("reply to '%s' does not fit the schema: %s", rep->op->name, e.msg);
		struct pmsg err;
		pmsg_refuse(&err, rep, PE_INTERNAL, "the supervisor built an invalid reply (a bug): %s", e.msg);
		int rc = stream_encode(&err, buf, sizeof(buf), &len, &e);
		pmsg_free(&err);
		if (rc < 0)
			return;
	}
	bufferevent_write(c->bev, buf, len);
	size_t queued = evbuffer_get_length(bufferevent_get_output(c->bev));
	if (queued > OUT_MAX) {
		log_audit_limited(c->uid, "uid %u pid %d: %zu bytes of replies unread; closing the connection",
				  (unsigned)c->uid, (int)c->pid, queued);
		client_drop(c);
	} else if (queued > OUT_PAUSE && !c->paused) {
		c->paused = true; /* read again once on_write sees it drained */
		event_del(c->rev);
	}
}

void client_refuse(struct client *c, const struct pmsg *req, int code, const char *fmt, ...)
{
	struct pmsg rep;
	va_list ap;
	va_start(ap, fmt);
	pmsg_vrefuse(&rep, req, code, fmt, ap);
	va_end(ap);
	client_send(c, &rep);
	pmsg_free(&rep);
}

static bool authorised(const struct client *c, enum control_who who)
{
	const struct instance *in = c->sup->inst;
	bool owner = c->uid == in->owner_uid || c->uid == 0;
	switch (who) {
	case WHO_ANYONE:
		return true;
	case WHO_CLIENT:
		return in->multi_user || owner;
	case WHO_OWNER:
		return owner;
	}
	return false;
}

static void dispatch(struct client *c, struct pmsg *req, const struct perr *e)
{
	if (e->code != PE_OK) {
		log_audit_limited(c->uid, "uid %u pid %d: refused request id=%u: %s: %s", (unsigned)c->uid, (int)c->pid,
				  req->id, proto_err_name(e->code), e->msg);
		client_refuse(c, req, e->code, "%s", e->msg);
		return;
	}
	if (req->kind == PK_EVENT && vm_client_event(c, req))
		return;
	if (req->kind != PK_REQUEST) {
		client_refuse(c, req, PE_INVALID, "clients send requests, and stdin/resize/signal events only");
		return;
	}
	const struct control_op *op = control_op_find(req->op->id);
	if (!op) {
		log_audit_limited(c->uid, "uid %u pid %d: refused '%s': not a client operation", (unsigned)c->uid,
				  (int)c->pid, req->op->name);
		client_refuse(c, req, PE_DENIED, "'%s' is not a client operation", req->op->name);
		return;
	}
	if (!authorised(c, op->who)) {
		log_audit_limited(c->uid, "uid %u pid %d: refused '%s': permission denied", (unsigned)c->uid,
				  (int)c->pid, req->op->name);
		client_refuse(c, req, PE_DENIED,
			      "permission denied: this fcvm instance belongs to uid %u; start your own with "
			      "'fcvm supervise --state-dir DIR' or use the system instance",
			      (unsigned)c->sup->inst->owner_uid);
		return;
	}
	if (c->inflight >= MAX_INFLIGHT) {
		client_refuse(c, req, PE_BUSY, "too many requests in flight on this connection");
		return;
	}
	op->fn(c, req);
}

/* Handle one buffered frame. Returns false when there is none (yet) or the connection is gone. */
static bool read_frame(struct client *c)
{
	struct evbuffer *in = c->in;
	size_t have = evbuffer_get_length(in), n;
	if (have < STREAM_HDR)
		return false;
	if (stream_frame_peek(evbuffer_pullup(in, STREAM_HDR), STREAM_HDR, &n) < 0) {
		log_audit_limited(c->uid, "uid %u pid %d: invalid frame length; closing the connection",
				  (unsigned)c->uid, (int)c->pid);
		client_drop(c);
		return false;
	}
	if (have < STREAM_HDR + n)
		return false;
	const unsigned char *frame = evbuffer_pullup(in, (ev_ssize_t)(STREAM_HDR + n));
	struct pmsg req;
	struct perr e = {0};
	pmsg_decode(&req, frame + STREAM_HDR, n, &e);
	evbuffer_drain(in, STREAM_HDR + n);
	/* fds the op expects (vm_run: the image) come beside the frame's first byte */
	if (e.code == PE_OK && req.kind == PK_REQUEST && req.op->nfds_req > 0) {
		unsigned want = req.op->nfds_req;
		if (c->nfds < want) {
			e.code = PE_INVALID;
			snprintf(e.msg, sizeof(e.msg), "'%s' needs %u file descriptor(s) beside it", req.op->name,
				 want);
		} else {
			int fds[PROTO_MAX_FDS];
			memcpy(fds, c->fds, want * sizeof(int));
			memmove(c->fds, c->fds + want, (c->nfds - want) * sizeof(int));
			c->nfds -= want;
			proto_attach_fds(&req, fds, want, &e);
		}
	}
	if (e.code == PE_MALFORMED) {
		log_audit_limited(c->uid, "uid %u pid %d: malformed frame (%s); closing the connection",
				  (unsigned)c->uid, (int)c->pid, e.msg);
		client_drop(c);
	} else {
		dispatch(c, &req, &e);
	}
	pmsg_free(&req);
	return c->bev != NULL; /* NOLINT(clang-analyzer-unix.Malloc): on_read holds a reference */
}

/* Read what the socket has, keeping any fds that come with it (SCM_RIGHTS). */
static bool receive(struct client *c)
{
	unsigned char buf[16384];
	union {
		char b[CMSG_SPACE(sizeof(int) * CLIENT_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b, .msg_controllen = sizeof(cbuf)};
	ssize_t n = recvmsg(bufferevent_getfd(c->bev), &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	size_t room = CLIENT_MAX_FDS - c->nfds, got = n > 0 ? chan_take_fds(&mh, c->fds + c->nfds, room, NULL) : 0;
	bool bad = got > room;
	c->nfds += bad ? room : got;
	if (n <= 0 || bad || (mh.msg_flags & MSG_CTRUNC)) {
		if (n > 0)
			log_audit_limited(c->uid, "uid %u pid %d: too many file descriptors; closing the connection",
					  (unsigned)c->uid, (int)c->pid);
		client_drop(c);
		return false;
	}
	/* our own buffer: a socket bufferevent's input only takes what it read itself */
	if (evbuffer_add(c->in, buf, (size_t)n) < 0) {
		client_drop(c);
		return false;
	}
	return true;
}

/* The frames buffered, while its replies are read. */
static void serve_frames(struct client *c)
{
	c->refs++; /* a handler may drop the connection; c must outlive this loop */
	while (!c->paused && read_frame(c))
		;
	if (c->bev) {
		bool partial = evbuffer_get_length(c->in) > 0;
		c->partial_ms = partial ? (c->partial_ms ? c->partial_ms : now_mono_ms()) : 0;
	}
	client_unref(c); /* NOLINT(clang-analyzer-unix.Malloc): the reference taken above */
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	(void)fd;
	(void)what;
	c->refs++;
	if (receive(c)) {
		c->last_ms = now_mono_ms();
		serve_frames(c);
	}
	client_unref(c); /* NOLINT(clang-analyzer-unix.Malloc): the reference taken above */
}

/* Its output drained below OUT_RESUME (the write watermark). */
static void on_write(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	(void)bev;
	if (c->paused) {
		c->paused = false;
		event_add(c->rev, NULL);
		c->refs++;	     /* serving may drop the connection */
		serve_frames(c);     /* what arrived before the pause */
		bool gone = !c->bev; /* NOLINT(clang-analyzer-unix.Malloc): held by the reference above */
		client_unref(c);     /* NOLINT(clang-analyzer-unix.Malloc): the reference taken above */
		if (gone)
			return;
	}
	vm_client_drained(c->sup, c); /* NOLINT(clang-analyzer-unix.Malloc): not gone, checked above */
}

static unsigned clients_of(const struct supervisor *s, uid_t uid)
{
	unsigned n = 0;
	const struct client *c;
	TAILQ_FOREACH (c, &s->clients, link)
		n += c->uid == uid;
	return n;
}

/* Connections idle too long, or stuck half-way through a frame, are closed. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct supervisor *s = arg;
	uint64_t now = now_mono_ms();
	(void)fd;
	(void)what;
	struct client *c, *next;
	for (c = TAILQ_FIRST(&s->clients); c; c = next) {
		next = TAILQ_NEXT(c, link);
		const char *why = NULL;
		if (c->partial_ms && now - c->partial_ms > PARTIAL_MS)
			why = "a frame half-sent for too long";
		else if (!c->inflight && !c->paused && now - c->last_ms > IDLE_MS && !vm_client_attached(s, c))
			why = "idle";
		if (why) {
			log_info("uid %u pid %d: connection closed: %s", (unsigned)c->uid, (int)c->pid, why);
			client_drop(c);
		}
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		client_drop(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct supervisor *s = arg;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	(void)l;
	(void)sa;
	(void)salen;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || s->nclients >= MAX_CLIENTS || s->stopping) {
		close(fd);
		return;
	}
	if (clients_of(s, cred.uid) >= MAX_CLIENTS_PER_UID) {
		log_audit_limited(cred.uid, "uid %u pid %d: connection refused: %d connections open already",
				  (unsigned)cred.uid, (int)cred.pid, MAX_CLIENTS_PER_UID);
		close(fd);
		return;
	}
	struct client *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->sup = s;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	c->refs = 1;
	c->last_ms = now_mono_ms();
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return;
	}
	c->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, on_readable, c);
	c->in = evbuffer_new();
	if (!c->rev || !c->in) {
		if (c->rev)
			event_free(c->rev);
		if (c->in)
			evbuffer_free(c->in);
		bufferevent_free(c->bev);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&s->clients, c, link);
	s->nclients++;
	/* the bufferevent only writes; reading is on_readable's (recvmsg keeps fds) */
	bufferevent_setcb(c->bev, NULL, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, OUT_RESUME, 0);
	bufferevent_enable(c->bev, EV_WRITE);
	event_add(c->rev, NULL);
}

int control_start(struct supervisor *s, int listen_fd)
{
	TAILQ_INIT(&s->clients);
	evutil_make_socket_nonblocking(listen_fd);
	/* backlog 0: already listening (bound by the launcher); no listen() needed here */
	s->listener =
	    evconnlistener_new(s->base, on_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, listen_fd);
	s->sweep = event_new(s->base, -1, EV_PERSIST, on_sweep, s);
	struct timeval tv = {SWEEP_MS / 1000, (SWEEP_MS % 1000) * 1000};
	if (s->sweep)
		event_add(s->sweep, &tv);
	return s->listener && s->sweep ? 0 : -1;
}

void control_stop(struct supervisor *s)
{
	if (s->listener) {
		evconnlistener_free(s->listener);
		s->listener = NULL;
	}
	if (s->sweep) {
		event_free(s->sweep);
		s->sweep = NULL;
	}
	/* every listed client is connected: client_drop unlists it */
	while (!TAILQ_EMPTY(&s->clients))
		client_drop(TAILQ_FIRST(&s->clients)); /* NOLINT(clang-analyzer-unix.Malloc): unlisted */
}
