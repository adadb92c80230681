/* The supervisor's end of a VM's agent port: a stream of proto frames over the virtio-serial
 * chardev's UNIX socket (docs/agent-protocol.md). Every connection starts with agent_hello;
 * bytes before the agent's sync marker are the tail of an older connection's frame and are
 * skipped. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common/log.h"
#include "proto/stream.h"
#include "supervisor/startup_cache.h"
#include "supervisor/supervisor.h"
#include "supervisor/vm.h"

#define AGENT_MAX_CALLS 64
/* A guest (its root can write on the agent's port) that breaks the protocol this often on one
 * connection, or sends this much without a sync marker, is disconnected and its VM stopped. */
#define AGENT_BAD_MAX  64
#define AGENT_SKIP_MAX (4u << 20)
#define HELLO_AGAIN_MS 2000

/* A call's own callback, which takes the VM too. */
struct agent_call {
	struct vm *vm;
	agent_reply_cb cb;
	void *arg;
};

static void on_call_done(struct pmsg *reply, void *arg)
{
	struct agent_call c = *(struct agent_call *)arg;
	free(arg);
	c.cb(c.vm, reply, c.arg);
}

void agent_link_close(struct vm *vm)
{
	if (vm->agent.bev) {
		bufferevent_free(vm->agent.bev);
		vm->agent.bev = NULL;
	}
	vm->agent_up = false;
	pending_fail_all(&vm->agent.calls, PE_UNAVAILABLE, "the VM's agent is not connected");
}

/* m encoded onto out (the agent's socket, or the queue of what waits for it) */
static bool frame_onto(struct vm *vm, const struct pmsg *m, struct evbuffer *out)
{
	unsigned char buf[STREAM_HDR + PROTO_MAX_FRAME];
	size_t len;
	struct perr e;
	if (stream_encode(m, buf, sizeof(buf), &len, &e) < 0) {
		log_err("%s: '%s' for the agent does not fit the schema: %s", vm->name, m->op->name, e.msg);
		return false;
	}
	return evbuffer_add(out, buf, len) == 0;
}

static void send_frame(struct vm *vm, const struct pmsg *m)
{
	if (vm->agent.bev)
		frame_onto(vm, m, bufferevent_get_output(vm->agent.bev));
}

#define AGENT_QUEUE_MAX (2 * 1024 * 1024)

/* Until the VM runs (its agent up, the container's proc_start sent) events wait, in order: a
 * run's stdin arrives while the guest boots. At most AGENT_QUEUE_MAX bytes of them. */
void agent_send_event(struct vm *vm, const struct pmsg *ev)
{
	bool early = !vm->agent_up || vm->status == VM_BOOTING || vm->status == VM_CREATING;
	if (!early && !vm->agent_queue) {
		send_frame(vm, ev);
		return;
	}
	if (!vm->agent_queue && !(vm->agent_queue = evbuffer_new()))
		return;
	if (evbuffer_get_length(vm->agent_queue) >= AGENT_QUEUE_MAX) {
		log_err("%s: more than %d bytes sent before the VM runs: '%s' dropped", vm->name, AGENT_QUEUE_MAX,
			ev->op->name);
		return;
	}
	frame_onto(vm, ev, vm->agent_queue);
}

void agent_flush_events(struct vm *vm)
{
	if (!vm->agent_queue)
		return;
	if (vm->agent.bev)
		bufferevent_write_buffer(vm->agent.bev, vm->agent_queue);
	evbuffer_free(vm->agent_queue);
	vm->agent_queue = NULL;
}

void agent_call(struct vm *vm, struct pmsg *req, agent_reply_cb cb, void *arg)
{
	agent_call_within(vm, req, AGENT_CALL_TIMEOUT_MS, cb, arg);
}

void agent_call_within(struct vm *vm, struct pmsg *req, int timeout_ms, agent_reply_cb cb, void *arg)
{
	struct agent_call *c = calloc(1, sizeof(*c));
	if (!c || !vm->agent.bev || pending_count(&vm->agent.calls) >= AGENT_MAX_CALLS) {
		free(c);
		struct pmsg rep;
		pmsg_init(&rep, PK_REPLY, req->op->id, 0);
		pmsg_set_error(&rep, vm->agent.bev ? PE_BUSY : PE_UNAVAILABLE, "the VM's agent is %s",
			       vm->agent.bev ? "busy" : "not connected");
		cb(vm, &rep, arg);
		pmsg_free(&rep);
		return;
	}
	*c = (struct agent_call){.vm = vm, .cb = cb, .arg = arg};
	req->id = pending_add(&vm->agent.calls, timeout_ms, on_call_done, c);
	send_frame(vm, req);
}

void agent_audit(struct vm *vm, const char *fmt, ...)
{
	char src[80], msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(src, sizeof(src), "VM %s", vm->name);
	log_audit_limited_src(src, "%s: %s", vm->name, msg);
}

/* The guest sent what no agent sends: logged (rate-limited, per VM), and past the bound the
 * connection is dropped and the VM stopped; nothing it sends reaches anybody else. */
void agent_bad(struct vm *vm, const char *what)
{
	agent_audit(vm, "%s", what);
	if (++vm->agent.bad < AGENT_BAD_MAX && vm->agent.skipped < AGENT_SKIP_MAX)
		return;
	log_err("%s: the agent's port broke the protocol %u times (%zu bytes skipped): disconnected, marked "
		"unhealthy, stopped",
		vm->name, vm->agent.bad, vm->agent.skipped);
	agent_link_close(vm);
	vm->agent.garbage = true;
	vm_say_to_sessions(vm, "fcvm: the VM's agent sent what it may not (undecodable or forged frames): the VM "
			       "is stopped\n");
	vm_stop(vm, "its agent broke the protocol");
	snprintf(vm->health, sizeof(vm->health), "unhealthy");
}

static void on_reply(struct vm *vm, struct pmsg *m)
{
	/* a reply after its call timed out is late, not forged: logged, not counted */
	if (!pending_complete(&vm->agent.calls, m))
		agent_audit(vm, "agent reply to unknown request %u", m->id);
}

static void on_event(struct vm *vm, const struct pmsg *m)
{
	switch (m->op->id) {
	case OP_PROC_OUTPUT:
		vm_on_output(vm, &m->body);
		break;
	case OP_PROC_EXIT:
		vm_on_exit(vm, &m->body);
		break;
	case OP_CONTAINER_HELD:
		cache_on_held(vm, &m->body);
		break;
	default:
		agent_bad(vm, "agent sent an event it does not send");
	}
}

/* Skip to the sync marker. Returns true once synced. */
static bool find_marker(struct vm *vm, struct evbuffer *in)
{
	struct evbuffer_ptr p = evbuffer_search(in, AGENT_SYNC_MARKER, AGENT_SYNC_MARKER_LEN, NULL);
	if (p.pos < 0) {
		size_t have = evbuffer_get_length(in);
		if (have >= AGENT_SYNC_MARKER_LEN) {
			evbuffer_drain(in, have - (AGENT_SYNC_MARKER_LEN - 1));
			vm->agent.skipped += have - (AGENT_SYNC_MARKER_LEN - 1);
			if (vm->agent.skipped >= AGENT_SKIP_MAX)
				agent_bad(vm, "no sync marker in what the agent's port sent");
		}
		return false;
	}
	vm->agent.skipped += (size_t)p.pos;
	evbuffer_drain(in, (size_t)p.pos + AGENT_SYNC_MARKER_LEN);
	vm->agent.synced = true;
	return true;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct vm *vm = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	/* a handler may close the link (never free the VM): re-checked each round */
	while (vm->agent.bev) {
		if (!vm->agent.synced && !find_marker(vm, in))
			break;
		size_t have = evbuffer_get_length(in), n;
		if (have < STREAM_HDR)
			break;
		/* the marker again, in sync: the agent answering a hello sent again (below) */
		if (have >= AGENT_SYNC_MARKER_LEN &&
		    memcmp(evbuffer_pullup(in, AGENT_SYNC_MARKER_LEN), AGENT_SYNC_MARKER, AGENT_SYNC_MARKER_LEN) == 0) {
			evbuffer_drain(in, AGENT_SYNC_MARKER_LEN);
			continue;
		}
		if (have < AGENT_SYNC_MARKER_LEN &&
		    memcmp(evbuffer_pullup(in, (ev_ssize_t)have), AGENT_SYNC_MARKER, have) == 0)
			break; /* perhaps the marker, not all here yet */
		if (stream_frame_peek(evbuffer_pullup(in, STREAM_HDR), STREAM_HDR, &n) < 0) {
			vm->agent.synced = false;
			evbuffer_drain(in, 1);
			agent_bad(vm, "invalid frame from the agent; waiting for the next sync");
			continue;
		}
		if (have < STREAM_HDR + n)
			break;
		const unsigned char *frame = evbuffer_pullup(in, (ev_ssize_t)(STREAM_HDR + n));
		struct pmsg m;
		struct perr e = {0};
		pmsg_decode(&m, frame + STREAM_HDR, n, &e);
		evbuffer_drain(in, STREAM_HDR + n);
		if (e.code != PE_OK) {
			char why[320];
			snprintf(why, sizeof(why), "refused a frame from the agent: %s", e.msg);
			agent_bad(vm, why);
		} else if (m.kind == PK_REPLY) {
			on_reply(vm, &m);
		} else if (m.kind == PK_EVENT) {
			on_event(vm, &m);
		} else {
			agent_bad(vm, "agent sent a request");
		}
		pmsg_free(&m);
	}
}

static void on_link_event(struct bufferevent *bev, short what, void *arg)
{
	struct vm *vm = arg;
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_info("%s: agent port closed", vm->name);
		agent_link_close(vm);
		vm_vmm_gone(vm);
	}
}

static void send_hello(struct vm *vm);

static void on_hello(struct vm *vm, struct pmsg *rep, void *arg)
{
	(void)arg;
	/* A re-attached VM's guest may still see the dead supervisor's connection close after
	 * the new one's hello came in (the port's data and its control messages travel apart):
	 * the agent then drops its reply with that connection. Asked again until it answers
	 * (the boot deadline bounds it). */
	if (rep->err_code == PE_UNAVAILABLE && vm->reattached && vm->agent.bev && vm->status == VM_BOOTING) {
		log_info("%s: no answer to hello yet; asking again", vm->name);
		send_hello(vm);
		return;
	}
	if (rep->err_code != PE_OK) {
		log_err("%s: agent hello failed: %s", vm->name, rep->err_msg ? rep->err_msg : "?");
		return;
	}
	vm->agent_up = true;
	vm_agent_ready(vm, &rep->body);
}

int agent_link_open(struct vm *vm)
{
	int fd = vm_connect(vm, "agent.sock");
	if (fd < 0)
		return fd;
	pending_init(&vm->agent.calls, vm->sup->base, "the VM's agent");
	vm->agent.synced = false;
	vm->agent.bad = 0;
	vm->agent.skipped = 0;
	vm->agent.bev = bufferevent_socket_new(vm->sup->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!vm->agent.bev) {
		close(fd);
		return -ENOMEM;
	}
	bufferevent_setcb(vm->agent.bev, on_read, NULL, on_link_event, vm);
	bufferevent_enable(vm->agent.bev, EV_READ | EV_WRITE);
	send_hello(vm);
	return 0;
}

/* A new VM's hello waits for its boot (the boot deadline covers it); a re-attached one's is
 * answered at once, or asked again (on_hello). */
static void send_hello(struct vm *vm)
{
	struct pmsg hello;
	pmsg_init(&hello, PK_REQUEST, OP_AGENT_HELLO, 0);
	agent_call_within(vm, &hello, vm->reattached ? HELLO_AGAIN_MS : 0, on_hello, NULL);
	pmsg_free(&hello);
}
