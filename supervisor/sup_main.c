/* The supervisor process: sandbox itself, then run the event loop. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "policy/sandbox.h"
#include "supervisor/client.h"
#include "supervisor/supervisor.h"
#include "supervisor/vm.h"
#include "common/vmconfig.h"

#define DRAIN_POLL_MS 10
#define DRAIN_MAX_MS  1000

/* The startup cache's bound per user: the instance's (FCVM_CACHE_MAX_MB as it started; 0
 * turns the cache off), else 4 GiB. */
#define CACHE_DEFAULT_MAX_MB 4096

static void on_ready_ack(struct pmsg *rep, void *arg)
{
	struct supervisor *s = arg;
	if (rep->err_code != PE_OK)
		log_err("launcher refused 'ready': %s", rep->err_msg);
	else if (prec_str(&rep->body, "vm_limits"))
		snprintf(s->vm_limits, sizeof(s->vm_limits), "%s", prec_str(&rep->body, "vm_limits"));
	bool fc = false;
	if (rep->err_code == PE_OK && prec_bool(&rep->body, "firecracker", &fc))
		s->firecracker_installed = fc;
}

void supervisor_check_ready(struct supervisor *s)
{
	if (s->ready_sent || !helpers_all_up(s))
		return;
	s->ready_sent = true;
	log_info("all helpers are up; ready");
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_READY, 0);
	peer_call(&s->launcher, &req, on_ready_ack, s);
	pmsg_free(&req);
}

/* Exit the loop once replies already queued to clients have gone out (bounded). */
static void on_drain_timer(evutil_socket_t fd, short what, void *arg)
{
	struct supervisor *s = arg;
	static unsigned waited;
	(void)fd;
	(void)what;
	bool pending = false;
	struct client *c;
	TAILQ_FOREACH (c, &s->clients, link)
		if (c->bev && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
			pending = true;
	waited += DRAIN_POLL_MS;
	if (!pending || waited >= DRAIN_MAX_MS) {
		event_base_loopbreak(s->base);
		return;
	}
	struct timeval tv = {0, DRAIN_POLL_MS * 1000};
	event_base_once(s->base, -1, EV_TIMEOUT, on_drain_timer, s, &tv);
}

#define VM_STOP_POLL_MS 50
#define VM_STOP_MAX_MS	25000 /* every VM's own stop deadlines fit in this */

/* What the VMs' last acts asked of the helpers (a disk's removal, netd's net_destroy) is
 * still in flight: stopping a helper now would lose its answer, or its work. */
static bool helper_calls_pending(const struct supervisor *s)
{
	for (int i = 0; i < HELPER__COUNT; i++)
		if (pending_count(&s->helpers[i].peer.calls))
			return true;
	return false;
}

/* VMs first (stored must still be up to remove their disks), then the helpers. */
static void on_vms_stopped_check(evutil_socket_t fd, short what, void *arg)
{
	struct supervisor *s = arg;
	static unsigned waited;
	(void)fd;
	(void)what;
	waited += VM_STOP_POLL_MS;
	if ((!vm_all_gone(s) || helper_calls_pending(s)) && waited < VM_STOP_MAX_MS) {
		struct timeval tv = {0, VM_STOP_POLL_MS * 1000};
		event_base_once(s->base, -1, EV_TIMEOUT, on_vms_stopped_check, s, &tv);
		return;
	}
	if (!vm_all_gone(s))
		log_err("some VMs did not stop in time");
	helpers_stop(s);
	struct timeval tv = {0, 0};
	event_base_once(s->base, -1, EV_TIMEOUT, on_drain_timer, s, &tv);
}

void supervisor_shutdown(struct supervisor *s, const char *why)
{
	if (s->stopping)
		return;
	s->stopping = true;
	log_info("shutting down: %s", why);
	if (s->listener) {
		evconnlistener_free(s->listener);
		s->listener = NULL;
	}
	vm_stop_all(s);
	struct timeval tv = {0, 0};
	event_base_once(s->base, -1, EV_TIMEOUT, on_vms_stopped_check, s, &tv);
}

static void on_launcher_request(struct peer *p, const struct pmsg *req, struct pmsg *rep, void *arg)
{
	struct supervisor *s = arg;
	(void)p;
	if (req->op->id == OP_SHUTDOWN) {
		const char *why = prec_str(&req->body, "reason");
		supervisor_shutdown(s, why ? why : "asked by the launcher");
		return;
	}
	log_audit("launcher: refused '%s'", req->op->name);
	pmsg_set_error(rep, PE_DENIED, "the supervisor does not serve '%s' to the launcher", req->op->name);
}

static void on_launcher_closed(struct peer *p, void *arg)
{
	(void)p;
	/* Without the launcher no helper can be restarted: stop cleanly. */
	supervisor_shutdown(arg, "the launcher went away");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	supervisor_shutdown(arg, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

int supervisor_main(const struct instance *inst, int listen_fd, int launcher_fd, int vms_fd)
{
	struct supervisor s = {.inst = inst, .started_ms = now_realtime_ms()};
	char err[256];

	log_init("supervisor");
	signal(SIGPIPE, SIG_IGN);
	TAILQ_INIT(&s.vms);
	/* STATE_DIR/vms, opened by the launcher: the state directory itself may be closed to us */
	s.vms_dirfd = vms_fd;
	s.kvm_usable = accel_kvm_usable("/sys");
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	s.host_cpus = ncpu > 0 ? (unsigned)ncpu : 1;
	s.cache_max_bytes = (inst->cache_max_set ? inst->cache_max_mb : CACHE_DEFAULT_MAX_MB) << 20;
	/* the quotas, read before the sandbox hides the file (the launcher checked it) */
	quotas_default(&s.quotas);
	if (inst->quotas_path[0] && quotas_load(&s.quotas, inst->quotas_path, err, sizeof(err)) < 0) {
		log_err("quotas: %s", err);
		return 1;
	}
	int keep[] = {listen_fd, launcher_fd, s.vms_dirfd};
	size_t nkeep = ARRAY_LEN(keep);
	/* its empty root shows /proc and, read-only, the guest assets */
	const char *const ro[] = {inst->assets_dir};
	struct sandbox_opts so = {
	    .keep_fds = keep,
	    .nkeep = nkeep,
	    .binds_ro = ro,
	    .nbinds_ro = inst->assets_dir[0] ? 1 : 0,
	};
	if (sandbox_enter(&policy_supervisor, &so, err, sizeof(err)) < 0) {
		log_err("sandbox: %s", err);
		return 1;
	}

	struct event_config *cfg = event_config_new();
	/* epoll only: the seccomp policy allows exactly its syscalls. */
	event_config_avoid_method(cfg, "poll");
	event_config_avoid_method(cfg, "select");
	s.base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (!s.base) {
		log_err("cannot create the event loop");
		return 1;
	}
	if (peer_open(&s.launcher, s.base, "launcher", launcher_fd, on_launcher_request, on_launcher_closed, &s) < 0 ||
	    control_start(&s, listen_fd) < 0) {
		log_err("cannot watch the launcher channel or the control socket");
		return 1;
	}
	s.sig_term = evsignal_new(s.base, SIGTERM, on_signal, &s);
	s.sig_int = evsignal_new(s.base, SIGINT, on_signal, &s);
	evsignal_add(s.sig_term, NULL);
	evsignal_add(s.sig_int, NULL);

	log_info("%s mode, uid %u, state dir %s", inst->mode_name, (unsigned)getuid(), inst->state_dir);
	/* VMs a predecessor left running (it died; they did not). Read as the supervisor's
	 * user: a restarted supervisor starts under the launcher, which cannot read vms/. */
	int nvms = vm_records_load(&s);
	if (nvms > 0) {
		log_info("%d VM record(s) found: re-attaching", nvms);
		vm_records_attach(&s);
	}
	helpers_start(&s);
	event_base_dispatch(s.base);

	control_stop(&s);
	helpers_stop(&s);
	peer_close(&s.launcher);
	event_free(s.sig_term);
	event_free(s.sig_int);
	event_base_free(s.base);
	log_info("stopped");
	return 0;
}
