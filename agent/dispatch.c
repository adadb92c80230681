/* One frame from the host: decode, act, reply (requests) or not (events). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "proto/stream.h"

/* An empty reply to req, or (code != PE_OK) an error reply saying why. */
static void reply(const struct pmsg *req, int code, const char *why)
{
	struct pmsg r;

	if (code == PE_OK)
		pmsg_init_reply(&r, req);
	else
		pmsg_refuse(&r, req, code, "%s", why);
	host_send(&r);
	pmsg_free(&r);
}

static void do_hello(const struct pmsg *req)
{
	struct pmsg r;

	pmsg_init_reply(&r, req);
	prec_set_str(&r, &r.body, "version", FCVM_VERSION);
	prec_set_uint(&r, &r.body, "uptime_ms", boottime_ms());
	prec_set_uint(&r, &r.body, "ready_ms", ag.ready_ms);
	prec_set_str(&r, &r.body, "container", container_state_name());
	/* Anything queued before the marker is skipped by the host; everything after it is a
	 * clean frame sequence: the reply, then every session's unacknowledged output again. */
	host_send_raw(AGENT_SYNC_MARKER, AGENT_SYNC_MARKER_LEN);
	host_send(&r);
	pmsg_free(&r);
	ag.ch.synced = true;
	sessions_hello();
}

static void do_health(const struct pmsg *req)
{
	struct pmsg r;

	pmsg_init_reply(&r, req);
	prec_set_str(&r, &r.body, "container", container_state_name());
	if (health_state_name())
		prec_set_str(&r, &r.body, "health", health_state_name());
	if (ag.cstate == CS_EXITED)
		prec_set_uint(&r, &r.body, "exit_code", (uint64_t)ag.cexit);
	prec_set_uint(&r, &r.body, "uptime_ms", boottime_ms());
	host_send(&r);
	pmsg_free(&r);
}

static void do_shutdown(const struct pmsg *req)
{
	reply(req, PE_OK, NULL);
	host_drain(1000);
	ag.shutting_down = true;
	if (!ag.boot)
		agent_exit(0);
	boot_shutdown();
}

static void do_start(const struct pmsg *req)
{
	char why[256] = "";
	int rc = session_start(&req->body, why, sizeof(why));

	reply(req, rc, why);
}

static void do_event(const struct pmsg *m)
{
	uint64_t id = 0, v, w;
	struct session *s;

	prec_uint(&m->body, "session", &id);
	s = session_find((uint32_t)id);
	if (!s || s->released) {
		alog("%s: no session %llu", m->op->name, (unsigned long long)id);
		return;
	}
	switch (m->op->id) {
	case OP_PROC_INPUT: {
		size_t n = 0;
		const void *d = prec_bin(&m->body, "data", &n);
		bool eof = false;
		prec_bool(&m->body, "eof", &eof);
		session_input(s, d, d ? n : 0, eof);
		break;
	}
	case OP_PROC_RESIZE:
		if (prec_uint(&m->body, "rows", &v) && prec_uint(&m->body, "cols", &w))
			session_resize(s, (unsigned)v, (unsigned)w);
		break;
	case OP_PROC_SIGNAL:
		if (prec_uint(&m->body, "signal", &v))
			session_signal(s, (int)v);
		break;
	case OP_PROC_ACK:
		if (prec_uint(&m->body, "offset", &v))
			session_ack(s, v);
		break;
	case OP_PROC_RELEASE:
		session_release(s);
		break;
	case OP_CONTAINER_GO:
		hold_release("the host let it go");
		break;
	default:
		alog("unexpected event %s", m->op->name);
	}
}

void dispatch_frame(const unsigned char *buf, size_t len)
{
	struct pmsg m;
	struct perr e;
	int rc = pmsg_decode(&m, buf, len, &e);

	if (rc == PE_MALFORMED) {
		aerr("malformed frame: %s", e.msg);
		pmsg_free(&m);
		host_malformed();
		return;
	}
	if (rc != PE_OK) {
		alog("refused frame: %s", e.msg);
		if (m.kind == PK_REQUEST)
			reply(&m, rc, e.msg);
		pmsg_free(&m);
		return;
	}
	if (m.kind == PK_EVENT) {
		do_event(&m);
	} else if (m.kind != PK_REQUEST) {
		alog("ignoring a reply (%s)", m.op->name);
	} else {
		switch (m.op->id) {
		case OP_AGENT_HELLO:
			do_hello(&m);
			break;
		case OP_AGENT_HEALTH:
			do_health(&m);
			break;
		case OP_AGENT_SHUTDOWN:
			do_shutdown(&m);
			break;
		case OP_PROC_START:
			do_start(&m);
			break;
		case OP_AGENT_RESTORE:
			do_restore(&m);
			break;
		default:
			reply(&m, PE_NOT_IMPLEMENTED, "not served by the agent");
		}
	}
	pmsg_free(&m);
}
