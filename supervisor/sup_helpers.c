/* Starting, watching and restarting the helpers. The supervisor cannot start a privileged
 * process itself (it has no capabilities), so it asks the launcher, which answers with the
 * supervisor's end of the new helper's channel. */
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "supervisor/supervisor.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STABLE_MS      10000 /* up this long: the next death restarts without backoff */

static void spawn(struct helper *h);

/* Restart after the current backoff, and double it (bounded) for the next time. */
static void schedule_restart(struct helper *h)
{
	h->state = HS_DOWN;
	struct timeval tv = {.tv_sec = (time_t)(h->backoff_ms / 1000),
			     .tv_usec = (suseconds_t)(h->backoff_ms % 1000) * 1000};
	evtimer_add(h->restart_timer, &tv);
	h->backoff_ms = h->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : h->backoff_ms * 2;
}

static void on_helper_closed(struct peer *p, void *arg)
{
	struct helper *h = arg;
	(void)p;
	uint64_t up_for = now_mono_ms() - h->started_mono_ms;
	h->state = HS_DOWN;
	if (h->sup->stopping)
		return;
	if (up_for >= STABLE_MS)
		h->backoff_ms = BACKOFF_MIN_MS;
	log_warn("%s (pid %d) is gone after %llu ms; restarting in %llu ms", helper_name(h->id), (int)h->pid,
		 (unsigned long long)up_for, (unsigned long long)h->backoff_ms);
	schedule_restart(h);
}

/* The helper answered its first ping: it is up. */
static void on_first_ping(struct pmsg *rep, void *arg)
{
	struct helper *h = arg;
	if (rep->err_code != PE_OK) {
		log_err("%s did not answer its first ping: %s", helper_name(h->id), rep->err_msg);
		return; /* its channel closing will schedule the restart */
	}
	uint64_t pid = 0;
	prec_uint(&rep->body, "pid", &pid);
	h->state = HS_UP;
	log_info("%s is up (pid %llu)", helper_name(h->id), (unsigned long long)pid);
	supervisor_check_ready(h->sup);
}

static void on_spawned(struct pmsg *rep, void *arg)
{
	struct helper *h = arg;
	struct supervisor *s = h->sup;
	if (rep->err_code != PE_OK) {
		log_err("launcher could not start %s: %s", helper_name(h->id), rep->err_msg);
		if (!s->stopping)
			schedule_restart(h);
		return;
	}
	uint64_t pid = 0;
	prec_uint(&rep->body, "pid", &pid);
	int fd = pmsg_take_fd(rep, 0);
	if (s->stopping) {
		close(fd);
		return;
	}
	h->pid = (pid_t)pid;
	h->started_mono_ms = now_mono_ms();
	if (peer_open(&h->peer, s->base, helper_name(h->id), fd, NULL, on_helper_closed, h) < 0) {
		log_err("cannot watch %s's channel", helper_name(h->id));
		schedule_restart(h);
		return;
	}
	struct pmsg ping;
	pmsg_init(&ping, PK_REQUEST, OP_PING, 0);
	peer_call(&h->peer, &ping, on_first_ping, h);
	pmsg_free(&ping);
}

static void spawn(struct helper *h)
{
	struct pmsg req;
	h->state = HS_STARTING;
	pmsg_init(&req, PK_REQUEST, OP_SPAWN, 0);
	prec_set_str(&req, &req.body, "helper", helper_name(h->id));
	peer_call(&h->sup->launcher, &req, on_spawned, h);
	pmsg_free(&req);
}

static void on_restart_timer(evutil_socket_t fd, short what, void *arg)
{
	struct helper *h = arg;
	(void)fd;
	(void)what;
	if (h->sup->stopping)
		return;
	h->restarts++;
	log_info("restarting %s (restart #%u)", helper_name(h->id), h->restarts);
	spawn(h);
}

void helpers_start(struct supervisor *s)
{
	for (int i = 0; i < HELPER__COUNT; i++) {
		struct helper *h = &s->helpers[i];
		h->id = (enum helper_id)i;
		h->sup = s;
		h->peer.fd = -1;
		h->backoff_ms = BACKOFF_MIN_MS;
		h->restart_timer = evtimer_new(s->base, on_restart_timer, h);
		spawn(h);
	}
}

void helpers_stop(struct supervisor *s)
{
	for (int i = 0; i < HELPER__COUNT; i++) {
		struct helper *h = &s->helpers[i];
		if (h->restart_timer) {
			event_free(h->restart_timer);
			h->restart_timer = NULL;
		}
		/* Closing the channel is the helper's signal to exit. */
		peer_close(&h->peer);
		h->state = HS_DOWN;
	}
}

bool helpers_all_up(const struct supervisor *s)
{
	for (int i = 0; i < HELPER__COUNT; i++)
		if (s->helpers[i].state != HS_UP)
			return false;
	return true;
}

void helper_call(struct supervisor *s, enum helper_id id, struct pmsg *req, peer_reply_cb cb, void *arg)
{
	struct helper *h = &s->helpers[id];
	if (h->state != HS_UP) {
		char msg[128];
		snprintf(msg, sizeof(msg), "%s is %s; it is restarted automatically, try again shortly",
			 helper_name(id), h->state == HS_STARTING ? "starting" : "down");
		peer_fail_reply(cb, arg, req->op->id, PE_UNAVAILABLE, msg);
		return;
	}
	peer_call(&h->peer, req, cb, arg);
}
