/* A VM's sessions: the container and each exec. Output from the agent goes to the client
 * attached to the session (and, for the container, to the VM's log and its followers); it
 * is acknowledged to the agent once passed on, unless the client is slow, in which case the
 * acknowledgement waits until its buffer drains: the agent then stops reading the process
 * (back-pressure, not loss). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common/log.h"
#include "common/util.h"
#include "supervisor/client.h"
#include "supervisor/snapshot.h"
#include "supervisor/startup_cache.h"
#include "supervisor/vm.h"

#define RUN_START_TIMEOUT_MS (10 * 60 * 1000) /* the container's proc_start: its image loaded, made */

struct vm_session *vm_session_new(struct vm *vm, struct client *c, bool is_run)
{
	struct vm_session *se = calloc(1, sizeof(*se));
	if (!se)
		return NULL;
	se->sid = vm->next_sid++;
	se->client = c;
	se->is_run = is_run;
	TAILQ_INSERT_TAIL(&vm->sessions, se, link);
	return se;
}

struct vm_session *vm_session_find(struct vm *vm, uint32_t sid)
{
	struct vm_session *se;
	TAILQ_FOREACH (se, &vm->sessions, link)
		if (se->sid == sid)
			return se;
	return NULL;
}

struct vm_session *vm_session_of_client(struct supervisor *s, struct client *c, uint32_t sid, struct vm **vmp)
{
	for (struct vm *vm = TAILQ_FIRST(&s->vms); vm; vm = TAILQ_NEXT(vm, link)) {
		struct vm_session *se = vm_session_find(vm, sid);
		if (se && se->client == c) {
			*vmp = vm;
			return se;
		}
	}
	return NULL;
}

static void send_ack(struct vm *vm, struct vm_session *se)
{
	struct pmsg ack;
	pmsg_init(&ack, PK_EVENT, OP_PROC_ACK, 0);
	prec_set_uint(&ack, &ack.body, "session", se->sid);
	prec_set_uint(&ack, &ack.body, "offset", se->offset);
	agent_send_event(vm, &ack);
	pmsg_free(&ack);
}

static bool client_slow(struct client *c)
{
	return c && c->bev && evbuffer_get_length(bufferevent_get_output(c->bev)) > CLIENT_HIGH_WATER;
}

/* A client's output buffer drained: acknowledge what waited for it. */
void vm_client_drained(struct supervisor *s, struct client *c)
{
	vm_logs_client_drained(c);
	for (struct vm *vm = TAILQ_FIRST(&s->vms); vm; vm = TAILQ_NEXT(vm, link))
		for (struct vm_session *se = TAILQ_FIRST(&vm->sessions); se; se = TAILQ_NEXT(se, link))
			if (se->client == c && se->ack_waiting) {
				se->ack_waiting = false;
				send_ack(vm, se);
			}
}

static void release_session(struct vm *vm, uint64_t sid)
{
	struct pmsg rel;
	pmsg_init(&rel, PK_EVENT, OP_PROC_RELEASE, 0);
	prec_set_uint(&rel, &rel.body, "session", sid);
	agent_send_event(vm, &rel);
	pmsg_free(&rel);
}

int vm_log_open_new(struct vm *vm)
{
	return openat(vm->dirfd, "output.log", O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
}

/* output.log past its bound becomes output.log.1 (the one before goes), a new one begins;
 * readers hold their own fds, followers move on (vm_logs.c). */
static void log_rotate(struct vm *vm)
{
	int fd = -1;
	if (renameat(vm->dirfd, "output.log", vm->dirfd, "output.log.1") < 0 || (fd = vm_log_open_new(vm)) < 0) {
		log_err("%s: the output log could not be rotated (%s): emptied", vm->name, strerror(errno));
		if (ftruncate(vm->log_fd, 0) < 0)
			log_err("%s: the output log could not be emptied: %s", vm->name, strerror(errno));
	} else {
		close(vm->log_fd);
		vm->log_fd = fd;
	}
	vm->log_size = 0;
	vm->log_gen++;
}

static void log_record(struct vm *vm, unsigned stream, const void *data, size_t n)
{
	if (vm->log_fd >= 0 && vm->log_size > 0 && vm->log_size + 5 + n > vm->log_max)
		log_rotate(vm);
	vm->log_size += 5 + n;
	unsigned char hdr[5] = {(unsigned char)stream};
	uint32_t be = htonl((uint32_t)n);
	memcpy(hdr + 1, &be, 4);
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)data, n}};
	if (vm->log_fd >= 0 && writev(vm->log_fd, iov, 2) != (ssize_t)(sizeof(hdr) + n))
		log_err("%s: output log write failed: %s", vm->name, strerror(errno));
}

void vm_send_output(struct client *c, uint32_t sid, unsigned stream, uint64_t offset, const void *data, size_t n)
{
	struct pmsg ev;
	pmsg_init(&ev, PK_EVENT, OP_PROC_OUTPUT, 0);
	prec_set_uint(&ev, &ev.body, "session", sid);
	prec_set_uint(&ev, &ev.body, "stream", stream);
	prec_set_uint(&ev, &ev.body, "offset", offset);
	prec_set_bin(&ev, &ev.body, "data", data, n);
	client_send(c, &ev);
	pmsg_free(&ev);
}

void vm_send_exit(struct client *c, uint32_t sid, int code, int sig, uint64_t offset)
{
	struct pmsg ev;
	pmsg_init(&ev, PK_EVENT, OP_PROC_EXIT, 0);
	prec_set_uint(&ev, &ev.body, "session", sid);
	prec_set_uint(&ev, &ev.body, "code", (uint64_t)code);
	if (sig > 0)
		prec_set_uint(&ev, &ev.body, "signal", (uint64_t)sig);
	prec_set_uint(&ev, &ev.body, "offset", offset);
	client_send(c, &ev);
	pmsg_free(&ev);
}

/* The recorded output (log_record's records) to c as session sid; *offset counts it. */
void vm_on_output(struct vm *vm, const struct precord *ev)
{
	uint64_t sid, stream, offset;
	size_t n;
	const void *data = prec_bin(ev, "data", &n);
	if (!prec_uint(ev, "session", &sid) || !prec_uint(ev, "stream", &stream) || !prec_uint(ev, "offset", &offset))
		return;
	struct vm_session *se = vm_session_find(vm, (uint32_t)sid);
	if (!se) { /* a session of a predecessor supervisor's: nobody wants it any more */
		release_session(vm, sid);
		return;
	}
	if (!data)
		return;
	if (se->resync) {
		se->resync = false;
		se->offset = offset;
	}
	/* after a reconnect the agent repeats what was not acknowledged: skip what we have */
	if (offset + n <= se->offset)
		return;
	if (offset > se->offset) {
		agent_audit(vm, "session %u: output gap (%llu > %llu)", se->sid, (unsigned long long)offset,
			    (unsigned long long)se->offset);
		return;
	}
	size_t skip = (size_t)(se->offset - offset);
	data = (const unsigned char *)data + skip;
	n -= skip;
	if (se->is_run) {
		log_record(vm, (unsigned)stream, data, n);
		vm_logs_appended(vm);
	}
	if (se->client)
		vm_send_output(se->client, se->sid, (unsigned)stream, se->offset, data, n);
	se->offset += n;
	if (client_slow(se->client))
		se->ack_waiting = true;
	else
		send_ack(vm, se);
}

void vm_on_exit(struct vm *vm, const struct precord *ev)
{
	uint64_t sid, code, sig = 0;
	if (!prec_uint(ev, "session", &sid) || !prec_uint(ev, "code", &code))
		return;
	prec_uint(ev, "signal", &sig);
	struct vm_session *se = vm_session_find(vm, (uint32_t)sid);
	release_session(vm, sid);
	if (!se || se->exited)
		return;
	se->exited = true;
	se->exit_code = (int)code;
	se->exit_signal = (int)sig;
	if (se->is_run) {
		/* The container is the VM's purpose: its end stops the VM. Its client hears of
		 * the exit once the VMM is gone (and the disk too, with --rm). */
		vm->exit_code = (int)code;
		log_info("%s: the container exited with %d", vm->name, (int)code);
		cache_run_ended(vm);
		vm_record_save(vm);
		vm_stop(vm, "the container exited");
		return;
	}
	if (se->client)
		vm_send_exit(se->client, se->sid, (int)code, (int)sig, se->offset);
	TAILQ_REMOVE(&vm->sessions, se, link);
	free(se);
}

#define HEALTH_INTERVAL_MS 1000
#define HEALTH_STARTING_MS 100 /* until the container first runs: who waits for it hears soon */

static void health_every(struct vm *vm, unsigned ms);

/* healthy: the container runs (podman exec works) and, with --health-cmd, its check passed;
 * starting: loading or starting it, or its check has not passed yet */
static void on_health(struct vm *vm, struct pmsg *rep, void *arg)
{
	(void)arg;
	if (vm->status != VM_RUNNING)
		return;
	const char *c = rep->err_code == PE_OK ? prec_str(&rep->body, "container") : NULL;
	const char *check = rep->err_code == PE_OK ? prec_str(&rep->body, "health") : NULL; /* --health-cmd */
	const char *h = !c			    ? "unhealthy"
			: strcmp(c, "running") == 0 ? (check ? check : "healthy")
			: strcmp(c, "exited") == 0  ? "unhealthy"
						    : "starting";
	snprintf(vm->health, sizeof(vm->health), "%s", h);
	/* what waits for the container waits for it to run, not for its health check */
	if (!vm->container_ran && c && strcmp(c, "running") == 0) {
		vm->container_ran = true;
		health_every(vm, HEALTH_INTERVAL_MS);
		vm_wait_ready(vm, true);
	} else {
		vm_wait_check(vm);
	}
	cache_on_health(vm);
}

static void on_health_timer(evutil_socket_t fd, short what, void *arg)
{
	struct vm *vm = arg;
	(void)fd;
	(void)what;
	if (vm->status != VM_RUNNING || !vm->agent_up)
		return;
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_AGENT_HEALTH, 0);
	agent_call(vm, &req, on_health, NULL);
	pmsg_free(&req);
}

static void health_every(struct vm *vm, unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	if (!vm->health_timer)
		vm->health_timer = event_new(vm->sup->base, -1, EV_PERSIST, on_health_timer, vm);
	if (vm->health_timer)
		event_add(vm->health_timer, &tv);
}

static void start_health_checks(struct vm *vm)
{
	health_every(vm, vm->container_ran ? HEALTH_INTERVAL_MS : HEALTH_STARTING_MS);
	on_health_timer(-1, 0, vm);
}

/* The container's start: on failure the agent's own error goes to the run session. */
static void on_run_started(struct vm *vm, struct pmsg *rep, void *arg)
{
	(void)arg;
	if (rep->err_code == PE_OK) {
		start_health_checks(vm);
		return;
	}
	log_err("%s: the container did not start: %s", vm->name, rep->err_msg ? rep->err_msg : "?");
	struct vm_session *se = TAILQ_FIRST(&vm->sessions);
	if (se && se->is_run && se->client) {
		char msg[600];
		int len = snprintf(msg, sizeof(msg), "fcvm: the container did not start: %s\n",
				   rep->err_msg ? rep->err_msg : "unknown error");
		vm_send_output(se->client, se->sid, 2, se->offset, msg, (size_t)len < sizeof(msg) ? (size_t)len : 0);
		se->offset += (uint64_t)len;
	}
	if (se && se->is_run) {
		se->exited = true;
		se->exit_code = 125;
		vm->exit_code = 125;
	}
	snprintf(vm->health, sizeof(vm->health), "unhealthy");
	vm_stop(vm, "the container did not start");
}

/* A VM its predecessor left that cannot go on (true: it is being stopped; --rm removes it): a
 * foreground run, whose client went with the supervisor that died (as it stops when its
 * client goes), or one whose container was never started (the request died with it). */
static bool vm_reattached_ends(struct vm *vm, const char *container)
{
	const char *why = NULL;
	if (vm->foreground)
		why = "it was a foreground run: its client went with the supervisor that died";
	else if (!container || strcmp(container, "none") == 0)
		why = "its container had not been started when the supervisor died";
	if (!why)
		return false;
	if (!vm->foreground) {
		vm->exit_code = 125;
		snprintf(vm->health, sizeof(vm->health), "unhealthy");
	}
	vm_record_save(vm);
	vm_stop(vm, why);
	return true;
}

void vm_agent_ready(struct vm *vm, const struct precord *hello)
{
	/* a clone's (or a re-attached VM's) container may run already: its hello says so */
	const char *c = hello ? prec_str(hello, "container") : NULL;
	if (c && strcmp(c, "running") == 0)
		vm->container_ran = true;
	/* a clone answers nothing else until it knows it is one (vm_clone.c); a re-attached one
	 * whose supervisor died before it was told is told now (a startup-cache clone is not: its
	 * container was never released, and it ends as such VMs do) */
	if (vm->status == VM_BOOTING && vm->clone_of[0] && !vm->identity_set &&
	    (!vm->reattached || strncmp(vm->clone_of, CACHE_TAG_PREFIX, strlen(CACHE_TAG_PREFIX)) != 0)) {
		clone_identity(vm);
		return;
	}
	/* a new VM's boot entry of the startup cache, before anything else reaches the guest */
	if (vm->status == VM_BOOTING && !vm->clone_of[0] && !vm->reattached && cache_before_run(vm))
		return;
	if (vm->status == VM_BOOTING) {
		vm->status = VM_RUNNING;
		event_del(vm->timer);
		if (vm->reattached) {
			log_info("%s: re-attached", vm->name);
			if (vm_reattached_ends(vm, c		       ? c
						   : vm->container_ran ? "running"
								       : NULL)) /* NULL hello: after identity */
				return;
			start_health_checks(vm);
		} else {
			vm->boot_ms = now_mono_ms() - vm->spawned_mono_ms;
			log_info("%s: agent ready %llu ms after the VMM started%s", vm->name,
				 (unsigned long long)vm->boot_ms, vm->clone_of[0] ? " (a clone)" : "");
			if (vm->clone_of[0]) /* its container runs already: watched from now on */
				start_health_checks(vm);
		}
		vm_record_save(vm);
		vm_wait_ready(vm, vm->container_ran);
	}
	if (!vm->run_started && vm->status == VM_RUNNING) {
		vm->run_started = true;
		/* podman loads the image and makes the container first: minutes, under TCG */
		agent_call_within(vm, &vm->run_start, RUN_START_TIMEOUT_MS, on_run_started, NULL);
	}
	if (vm->status == VM_RUNNING)
		agent_flush_events(vm); /* after the container's proc_start: its stdin follows it */
}

void vm_say_to_sessions(struct vm *vm, const char *msg)
{
	size_t len = strlen(msg);
	for (struct vm_session *se = TAILQ_FIRST(&vm->sessions); se; se = TAILQ_NEXT(se, link))
		if (se->client) {
			vm_send_output(se->client, se->sid, 2, se->offset, msg, len);
			se->offset += len;
		}
}

bool vm_client_attached(struct supervisor *s, const struct client *c)
{
	if (vm_logs_client_reads(c))
		return true;
	for (struct vm *vm = TAILQ_FIRST(&s->vms); vm; vm = TAILQ_NEXT(vm, link))
		for (struct vm_session *se = TAILQ_FIRST(&vm->sessions); se; se = TAILQ_NEXT(se, link))
			if (se->client == c)
				return true;
	return false;
}

void vm_client_gone(struct supervisor *s, struct client *c)
{
	struct vm *vm, *next;
	vm_logs_client_gone(c);
	for (vm = TAILQ_FIRST(&s->vms); vm; vm = next) {
		next = TAILQ_NEXT(vm, link);
		struct vm_session *se;
		bool foreground = false;
		TAILQ_FOREACH (se, &vm->sessions, link)
			if (se->client == c) {
				se->client = NULL;
				foreground |= se->is_run;
				if (se->ack_waiting) {
					se->ack_waiting = false;
					send_ack(vm, se);
				}
			}
		/* a foreground run whose client went away (killed, Ctrl-C) stops its VM */
		if (foreground)
			vm_stop(vm, "its client went away");
	}
}

void vm_proc_start(struct pmsg *m, uint32_t sid, const char *kind, const struct precord *from)
{
	/* what vm_run and vm_exec share with proc_start */
	static const char *const fields[] = {
	    "argv",	"env",	      "tty",	    "stdin",	       "rows",
	    "cols",	"workdir",    "user",	    "privileged",      "detach",
	    "hostname", "entrypoint", "labels",	    "read_only",       "tmpfs",
	    "cap_add",	"cap_drop",   "health_cmd", "health_interval", "health_retries"};
	pmsg_init(m, PK_REQUEST, OP_PROC_START, 0);
	prec_set_uint(m, &m->body, "session", sid);
	prec_set_str(m, &m->body, "kind", kind);
	prec_copy_fields(m, &m->body, from, fields, ARRAY_LEN(fields));
}
