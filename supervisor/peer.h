/* A seqpacket channel on the supervisor's event loop with request/reply matching:
 * used for each helper and for the launcher. */
#ifndef FCVM_PEER_H
#define FCVM_PEER_H

#include <event2/event.h>
#include <sys/queue.h>

#include "proto/proto.h"

/* A peer that does not answer in time (hung, stopped) fails the call rather than stalling it. */
#define PEER_CALL_TIMEOUT_MS 5000

struct peer;

/* Called with the reply (err_code set on failure; PE_UNAVAILABLE if the peer went away).
 * The reply and its fds belong to the callback for its duration; take fds to keep them. */
typedef void (*peer_reply_cb)(struct pmsg *reply, void *arg);
/* A request from the peer: fill rep (initialised as its reply). */
typedef void (*peer_request_cb)(struct peer *p, const struct pmsg *req, struct pmsg *rep, void *arg);
/* The channel is gone (EOF, error, or malformed input). Pending calls already failed. */
typedef void (*peer_closed_cb)(struct peer *p, void *arg);

struct peer;

struct peer_pending {
	struct peer *peer;
	struct event *timer; /* fails the call if no reply comes in PEER_CALL_TIMEOUT_MS */
	uint32_t id;
	peer_reply_cb cb;
	void *arg;
	TAILQ_ENTRY(peer_pending) link;
};
TAILQ_HEAD(peer_pending_list, peer_pending);

struct peer {
	struct event_base *base;
	const char *name;
	int fd;
	struct event *ev;
	uint32_t next_id;
	struct peer_pending_list pending;
	peer_request_cb on_request;
	peer_closed_cb on_closed;
	void *arg;
};

/* Start watching fd (owned by the peer from now on). */
int peer_open(struct peer *p, struct event_base *base, const char *name, int fd, peer_request_cb on_request,
	      peer_closed_cb on_closed, void *arg);
/* Close the channel: fails pending calls with PE_UNAVAILABLE; does not call on_closed. */
void peer_close(struct peer *p);

/* Send req (its id is assigned here). cb is called exactly once: with the reply, or with a
 * PE_UNAVAILABLE error if the send fails, the channel closes first, or no reply comes within
 * PEER_CALL_TIMEOUT_MS (a late reply is then dropped). */
void peer_call(struct peer *p, struct pmsg *req, peer_reply_cb cb, void *arg);

/* A reply carrying only an error, for callbacks (op and id as the request's). */
void peer_fail_reply(peer_reply_cb cb, void *arg, enum proto_op op, int code, const char *msg);

#endif
