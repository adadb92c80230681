/* Calls in flight (supervisor/pending.h): a list per table, a libevent timer per deadline. */
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "supervisor/pending.h"

struct pending_call {
	struct pending_table *t;
	uint32_t id;
	int timeout_ms;
	struct event *timer; /* NULL: no deadline */
	pending_cb cb;
	void *arg;
	TAILQ_ENTRY(pending_call) link;
};

void pending_init(struct pending_table *t, struct event_base *base, const char *name)
{
	t->base = base;
	t->name = name;
	t->n = 0;
	TAILQ_INIT(&t->calls);
}

unsigned pending_count(const struct pending_table *t)
{
	return t->n;
}

/* Unlist and free c, then give reply to its callback: that may add calls, fail the others or
 * re-initialise the table, so c must be gone first. */
static void finish(struct pending_call *c, struct pmsg *reply)
{
	pending_cb cb = c->cb;
	void *arg = c->arg;
	TAILQ_REMOVE(&c->t->calls, c, link);
	c->t->n--;
	if (c->timer)
		event_free(c->timer);
	free(c);
	cb(reply, arg);
}

static void fail_one(struct pending_call *c, int code, const char *msg)
{
	struct pmsg r;
	pmsg_init(&r, PK_REPLY, OP_PING, c->id);
	pmsg_set_error(&r, code, "%s", msg);
	finish(c, &r);
	pmsg_free(&r);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pending_call *c = arg;
	char msg[128];
	(void)fd;
	(void)what;
	snprintf(msg, sizeof(msg), "%s did not answer within %d ms", c->t->name, c->timeout_ms);
	log_warn("%s", msg);
	fail_one(c, PE_UNAVAILABLE, msg);
}

uint32_t pending_add(struct pending_table *t, int timeout_ms, pending_cb cb, void *arg)
{
	struct pending_call *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	*c = (struct pending_call){.t = t, .id = ++t->last_id, .timeout_ms = timeout_ms, .cb = cb, .arg = arg};
	if (timeout_ms > 0) {
		struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
		if (!(c->timer = evtimer_new(t->base, on_timeout, c)) || evtimer_add(c->timer, &tv) < 0)
			abort();
	}
	TAILQ_INSERT_TAIL(&t->calls, c, link);
	t->n++;
	return c->id;
}

static struct pending_call *find(struct pending_table *t, uint32_t id)
{
	struct pending_call *c;
	/* the analyzer does not follow TAILQ_REMOVE's unlink through tqe_prev */
	TAILQ_FOREACH (c, &t->calls, link)
		if (c->id == id) /* NOLINT(clang-analyzer-unix.Malloc) */
			return c;
	return NULL;
}

bool pending_complete(struct pending_table *t, struct pmsg *reply)
{
	struct pending_call *c = find(t, reply->id);
	if (!c)
		return false;
	finish(c, reply);
	return true;
}

void pending_fail(struct pending_table *t, uint32_t id, int code, const char *msg)
{
	struct pending_call *c = find(t, id);
	if (c)
		fail_one(c, code, msg);
}

void pending_fail_all(struct pending_table *t, int code, const char *msg)
{
	/* fail_one unlists each; the analyzer does not follow TAILQ_REMOVE through tqe_prev */
	while (!TAILQ_EMPTY(&t->calls))
		fail_one(TAILQ_FIRST(&t->calls), code, msg); /* NOLINT(clang-analyzer-unix.Malloc) */
}
