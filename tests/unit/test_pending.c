/* supervisor/pending.c: calls matched to replies by id, deadlines, failing all on close. */
#include <event2/event.h>

#include "supervisor/pending.h"
#include "tests/unit/check.h"

/* What each callback saw, in order. */
struct seen {
	int n;
	uint32_t id[8];
	int code[8];
	char msg[8][128];
	int tag[8];
};
static struct seen seen;

struct tagged {
	int tag;
	struct pending_table *t; /* reentry: fail the others from inside a callback */
};

static void record(struct pmsg *reply, void *arg)
{
	struct tagged *a = arg;
	CHECK(seen.n < 8);
	seen.id[seen.n] = reply->id;
	seen.code[seen.n] = reply->err_code;
	snprintf(seen.msg[seen.n], sizeof(seen.msg[0]), "%s", reply->err_msg ? reply->err_msg : "");
	seen.tag[seen.n++] = a ? a->tag : 0;
	if (a && a->t)
		pending_fail_all(a->t, PE_INTERNAL, "failed from a callback");
}

TEST(complete_by_id_once)
{
	struct event_base *base = event_base_new();
	struct pending_table t = {0};
	struct tagged a = {1, NULL}, b = {2, NULL};
	pending_init(&t, base, "netd");
	uint32_t ia = pending_add(&t, 5000, record, &a), ib = pending_add(&t, 0, record, &b);
	CHECK(ia != ib);
	CHECK_EQ(pending_count(&t), 2);

	struct pmsg r;
	pmsg_init(&r, PK_REPLY, OP_PING, ib);
	CHECK(pending_complete(&t, &r));
	CHECK(!pending_complete(&t, &r)); /* answered already */
	pmsg_free(&r);
	CHECK_EQ(seen.n, 1);
	CHECK_EQ(seen.tag[0], 2);
	CHECK_EQ(seen.code[0], PE_OK);
	CHECK_EQ(pending_count(&t), 1);

	pending_fail(&t, ia, PE_INVALID, "cannot send");
	CHECK_EQ(seen.n, 2);
	CHECK_EQ(seen.id[1], ia);
	CHECK_EQ(seen.code[1], PE_INVALID);
	CHECK_STR(seen.msg[1], "cannot send");
	CHECK_EQ(pending_count(&t), 0);
	event_base_free(base);
}

TEST(deadline_fails_the_call_and_drops_a_late_reply)
{
	struct event_base *base = event_base_new();
	struct pending_table t = {0};
	pending_init(&t, base, "uffdd");
	uint32_t id = pending_add(&t, 50, record, NULL);
	event_base_dispatch(base); /* returns once the only timer has fired */
	CHECK_EQ(seen.n, 1);
	CHECK_EQ(seen.id[0], id);
	CHECK_EQ(seen.code[0], PE_UNAVAILABLE);
	CHECK_STR(seen.msg[0], "uffdd did not answer within 50 ms");

	struct pmsg r;
	pmsg_init(&r, PK_REPLY, OP_PING, id);
	CHECK(!pending_complete(&t, &r));
	pmsg_free(&r);
	CHECK_EQ(seen.n, 1);
	event_base_free(base);
}

TEST(fail_all_oldest_first_even_from_a_callback)
{
	struct event_base *base = event_base_new();
	struct pending_table t = {0};
	int events = event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED);
	pending_fail_all(&t, PE_UNAVAILABLE, "never opened"); /* a zeroed table is empty */
	CHECK_EQ(pending_count(&t), 0);
	pending_init(&t, base, "launcher");
	struct tagged a = {1, NULL}, b = {2, &t}, c = {3, NULL};
	pending_add(&t, 5000, record, &a);
	pending_add(&t, 5000, record, &b);
	pending_add(&t, 0, record, &c);
	pending_fail_all(&t, PE_UNAVAILABLE, "launcher went away before answering");
	CHECK_EQ(seen.n, 3);
	CHECK_EQ(seen.tag[0], 1);
	CHECK_EQ(seen.tag[1], 2);
	CHECK_EQ(seen.tag[2], 3);
	CHECK_STR(seen.msg[1], "launcher went away before answering");
	CHECK_STR(seen.msg[2], "failed from a callback"); /* b's callback failed c */
	CHECK_EQ(pending_count(&t), 0);
	CHECK_EQ(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), events); /* timers gone */
	event_base_free(base);
}

TEST(ids_go_on_across_reinit)
{
	struct event_base *base = event_base_new();
	struct pending_table t = {0};
	pending_init(&t, base, "agent");
	uint32_t first = pending_add(&t, 0, record, NULL);
	pending_fail_all(&t, PE_UNAVAILABLE, "gone");
	pending_init(&t, base, "agent");
	CHECK(pending_add(&t, 0, record, NULL) > first);
	pending_fail_all(&t, PE_UNAVAILABLE, "gone");
	event_base_free(base);
}
