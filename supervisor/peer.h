/* A seqpacket channel on the supervisor's event loop with request/reply matching:
 * used for each helper and for the launcher. */
#ifndef FCVM_PEER_H
#define FCVM_PEER_H

#include <event2/event.h>

#include "proto/proto.h"
#include "supervisor/pending.h"

/* A peer that does not answer in time (hung, stopped) fails the call rather than stalling it. */
#define PEER_CALL_TIMEOUT_MS 5000

struct peer;

/* Called with the reply (err_code set on failure; PE_UNAVAILABLE if the peer went away).
 * The reply and its fds belong to the callback for its duration; take fds to keep them. */
typedef pending_cb peer_reply_cb;
/* A request from the peer: fill rep (initialised as its reply). */
typedef void (*peer_request_cb)(struct peer *p, const struct pmsg *req, struct pmsg *rep, void *arg);
/* The channel is gone (EOF, error, or malformed input). Pending calls already failed. */
typedef void (*peer_closed_cb)(struct peer *p, void *arg);

struct peer {
	struct event_base *base;
	const char *name;
	int fd;
	struct event *ev;
	struct pending_table calls;
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
