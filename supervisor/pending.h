/* Calls in flight on one channel (a helper's, the launcher's, a VM's QMP or agent link),
 * matched to their replies by id, each with an optional deadline. Every call's callback runs
 * exactly once: with the reply, a timeout error, or the error its channel failed it with. */
#ifndef FCVM_PENDING_H
#define FCVM_PENDING_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "proto/proto.h"

/* The reply (err_code set on failure), the callback's for its duration: take fds to keep them.
 * A failure the table makes itself (timeout, pending_fail_all) comes as an error reply under
 * ping's op and the call's id. */
typedef void (*pending_cb)(struct pmsg *reply, void *arg);

struct pending_call;
TAILQ_HEAD(pending_list, pending_call);

struct pending_table {
	struct event_base *base;
	const char *name; /* who answers: "NAME did not answer within N ms" */
	uint32_t last_id;
	unsigned n;
	struct pending_list calls;
};

/* Ready t for calls (again, after a reconnect). Ids go on counting from the last one, so a
 * late answer to an earlier connection's call matches nothing. A zeroed table that was
 * never initialised is empty: pending_fail_all and pending_count work on it. */
void pending_init(struct pending_table *t, struct event_base *base, const char *name);

/* Register a call; returns its id, for the request. timeout_ms > 0: if no reply comes by
 * then, cb gets PE_UNAVAILABLE "NAME did not answer within N ms" (logged as a warning)
 * and a late reply finds no call. 0: no deadline. */
uint32_t pending_add(struct pending_table *t, int timeout_ms, pending_cb cb, void *arg);

/* The call reply->id answers, unlisted and given the reply. false if there is none. */
bool pending_complete(struct pending_table *t, struct pmsg *reply);

/* Fail call id (if still listed) with an error reply (code, msg). */
void pending_fail(struct pending_table *t, uint32_t id, int code, const char *msg);

/* Fail every call, oldest first, with the same error: the channel has gone. */
void pending_fail_all(struct pending_table *t, int code, const char *msg);

unsigned pending_count(const struct pending_table *t);

#endif
