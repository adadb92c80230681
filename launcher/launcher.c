#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/procinfo.h"
#include "common/util.h"
#include "policy/sandbox.h"
#include "proto/chan.h"
#include "common/ports.h"
#include "common/vmconfig.h"
#include "launcher/launcher.h"

#define READY_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS	 10000

static int status_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}

static void user_msg(struct launcher *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void user_msg(struct launcher *L, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	ssize_t w = write(L->ls->user_err, buf, (size_t)n);
	(void)w;
}

void launcher_refuse(struct pmsg *rep, int code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_audit("refused %s", msg);
	pmsg_set_error(rep, code, "%s", msg);
}

/* Ask the spawner for prog with the one fd it takes (a channel); the pid, or -1 with msg. */
static pid_t spawn_simple(struct launcher *L, enum prog prog, int fd, char *msg, size_t len)
{
	static struct spawn_order o;
	memset(&o, 0, sizeof(o));
	o.prog = prog;
	o.out_fd = -1;
	return spawner_ask(L->spawner, &o, &fd, 1, msg, len);
}

static const enum prog helper_prog[HELPER__COUNT] = {
    [HELPER_NETD] = PROG_NETD, [HELPER_STORED] = PROG_STORED, [HELPER_UFFDD] = PROG_UFFDD};

int launcher_policy_limits(struct launcher *L)
{
	uint64_t cpus = 0, mem = 0;
	if (!parse_uint(sandbox_setting(&policy_launcher, "vmm_cpus_max") ?: "", 1024, &cpus) ||
	    !parse_uint(sandbox_setting(&policy_launcher, "vmm_mem_max") ?: "", 1u << 20, &mem) ||
	    ports_range(sandbox_setting(&policy_netd, "ports"), &L->port_min, &L->port_max) < 0)
		return -1;
	L->vmm_cpus_max = (unsigned)cpus;
	L->vmm_mem_max = (unsigned)mem;
	return 0;
}

static void serve_spawn(struct launcher *L, const struct pmsg *req, struct pmsg *rep)
{
	const char *name = prec_str(&req->body, "helper");
	int id = helper_by_name(name);
	int sv[2];
	if (id < 0) {
		launcher_refuse(rep, PE_DENIED, "spawn of '%s': not a helper", name);
		return;
	}
	/* One instance of each helper: a stale one (e.g. hung) is killed first. */
	if (L->helper_pid[id] > 0)
		kill(L->helper_pid[id], SIGKILL);
	int rc = chan_pair(sv);
	if (rc < 0) {
		pmsg_set_error(rep, PE_INTERNAL, "socketpair: %s", strerror(-rc));
		return;
	}
	char msg[256];
	pid_t pid = spawn_simple(L, helper_prog[id], sv[1], msg, sizeof(msg));
	if (pid < 0) {
		pmsg_set_error(rep, PE_INTERNAL, "%s did not start: %s", name, msg);
		close(sv[0]);
		close(sv[1]);
		return;
	}
	close(sv[1]);
	L->helper_pid[id] = pid;
	log_info("started %s as pid %d", name, (int)pid);
	prec_set_uint(rep, &rep->body, "pid", (uint64_t)pid);
	pmsg_add_fd(rep, sv[0]);
}

static void serve_vmm_spawn(struct launcher *L, const struct pmsg *req, struct pmsg *rep)
{
	size_t slot = 0;
	while (slot < MAX_VMMS && L->vmm_pid[slot] > 0)
		slot++;
	if (slot == MAX_VMMS) {
		pmsg_set_error(rep, PE_BUSY, "%d VMMs already running", MAX_VMMS);
		return;
	}
	pid_t pid = vmm_spawn(L, (unsigned)slot, req, rep);
	if (pid > 0)
		L->vmm_pid[slot] = pid;
}

static void serve_pasta_spawn(struct launcher *L, const struct pmsg *req, struct pmsg *rep)
{
	uint64_t vmm = 0;
	size_t slot = 0;
	prec_uint(&req->body, "vmm_pid", &vmm);
	while (slot < MAX_VMMS && (L->vmm_pid[slot] <= 0 || L->vmm_pid[slot] != (pid_t)vmm))
		slot++;
	if (slot == MAX_VMMS || L->pasta_pid[slot] > 0) {
		launcher_refuse(rep, PE_DENIED, "pasta for pid %llu: not a VMM of ours without a network",
				(unsigned long long)vmm);
		return;
	}
	pid_t pid = pasta_spawn(L, req, rep);
	if (pid > 0)
		L->pasta_pid[slot] = pid;
}

static void serve_ready(struct launcher *L, struct pmsg *rep)
{
	char limits[400];
	vmm_cgroup_describe(&L->ls->cg, NULL, limits, sizeof(limits));
	prec_set_str(rep, &rep->body, "vm_limits", limits);
	prec_set_bool(rep, &rep->body, "firecracker", L->ls->firecracker);
	if (L->ready)
		return;
	L->ready = true;
	L->deadline_ms = 0;
	if (L->ls->cmd_go >= 0) {
		ssize_t w = write(L->ls->cmd_go, "g", 1);
		(void)w;
		close(L->ls->cmd_go);
		L->ls->cmd_go = -1;
	} else {
		user_msg(L, "fcvm: supervisor ready (%s mode), socket %s", L->ls->inst->mode_name,
			 L->ls->inst->socket_path);
	}
}

static void serve_op(struct launcher *L, const struct pmsg *req, struct pmsg *rep)
{
	switch (req->op->id) {
	case OP_SPAWN:
		serve_spawn(L, req, rep);
		break;
	case OP_VMM_SPAWN:
	case OP_VMM_SPAWN_NET:
	case OP_VMM_RESTORE:
	case OP_VMM_RESTORE_NET:
		serve_vmm_spawn(L, req, rep);
		break;
	case OP_PASTA_SPAWN:
		serve_pasta_spawn(L, req, rep);
		break;
	case OP_READY:
		serve_ready(L, rep);
		break;
	case OP_PING:
		if (procinfo_fill(rep, &rep->body, "launcher", L->ls->inst->mode_name, L->started_ms) < 0)
			pmsg_set_error(rep, PE_INTERNAL, "launcher cannot describe itself");
		break;
	default:
		launcher_refuse(rep, PE_DENIED, "'%s' from the supervisor: the launcher does not serve it",
				req->op->name);
	}
}

static void handle_request(struct launcher *L, const struct pmsg *req, const struct perr *e)
{
	struct pmsg rep;
	struct perr se;
	pmsg_init_reply(&rep, req);
	if (e->code != PE_OK) /* op unknown or body invalid: the decoder's reason */
		launcher_refuse(&rep, e->code, "request from the supervisor: %s", e->msg);
	else
		serve_op(L, req, &rep);
	int rc = chan_send_msg(L->chan, &rep, &se);
	if (rc < 0)
		log_err("reply to request %u not sent: %s", req->id, strerror(-rc));
	pmsg_free(&rep);
}

/* Returns false when the channel is gone. */
bool launcher_read_channel(struct launcher *L)
{
	struct pmsg m;
	struct perr e = {0};
	int r = chan_recv_msg(L->chan, &m, &e);
	if (r <= 0)
		return false;
	if (e.code == PE_MALFORMED) {
		log_audit("malformed frame from the supervisor: %s", e.msg);
		pmsg_free(&m);
		return false;
	}
	if (m.kind == PK_REQUEST)
		handle_request(L, &m, &e);
	/* replies (to our shutdown request) need no action */
	pmsg_free(&m);
	return true;
}

static void ask_shutdown(struct launcher *L, const char *why)
{
	if (L->shutdown_sent || L->sup_done || L->chan < 0)
		return;
	L->shutdown_sent = true;
	L->deadline_ms = now_mono_ms() + STOP_TIMEOUT_MS;
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_SHUTDOWN, ++L->next_id);
	prec_set_str(&req, &req.body, "reason", why);
	chan_send_msg(L->chan, &req, NULL);
	pmsg_free(&req);
}

#define SIGNAL_AGAIN_MS	      2000
#define SUP_RESTARTS_MAX      5 /* in one window: a supervisor that keeps dying ends the instance */
#define SUP_RESTART_WINDOW_MS 60000

/* A supervisor that died (killed, crashed) is started again; its VMs keep running under this
 * launcher and the new one re-attaches to them (supervisor/vm_record.c). */
static bool start_supervisor(struct launcher *L);

static bool restart_supervisor(struct launcher *L)
{
	uint64_t now = now_mono_ms();
	if (now - L->restart_window_ms > SUP_RESTART_WINDOW_MS) {
		L->restart_window_ms = now;
		L->sup_restarts = 0;
	}
	if (++L->sup_restarts > SUP_RESTARTS_MAX) {
		log_err("the supervisor died %u times within %d s; stopping", L->sup_restarts - 1,
			SUP_RESTART_WINDOW_MS / 1000);
		return false;
	}
	return start_supervisor(L);
}

/* The supervisor, first start or restart alike: exec'd by the spawner, so every start enters
 * the same sandbox. */
static bool start_supervisor(struct launcher *L)
{
	int sv[2];
	char msg[256];
	if (chan_pair(sv) < 0)
		return false;
	pid_t pid = spawn_simple(L, PROG_SUPERVISOR, sv[1], msg, sizeof(msg));
	if (pid < 0) {
		log_err("the supervisor did not start: %s", msg);
		close(sv[0]);
		close(sv[1]);
		return false;
	}
	close(sv[1]);
	if (L->chan >= 0)
		close(L->chan);
	L->chan = sv[0];
	L->sup_pid = pid;
	L->sup_done = false;
	L->deadline_ms = 0;
	log_info("supervisor started as pid %d", (int)pid);
	return true;
}

/* The supervisor is gone for good: the command (if any) is asked to stop, and whatever is
 * left gets the stop deadline. */
static void supervisor_ended(struct launcher *L)
{
	if (L->ls->cmd_pid > 0 && !L->cmd_done)
		kill(L->ls->cmd_pid, SIGTERM);
	if (!L->deadline_ms)
		L->deadline_ms = now_mono_ms() + STOP_TIMEOUT_MS;
}

static void reap(struct launcher *L)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid == L->sup_pid) {
			L->sup_done = true;
			L->sup_status = st;
			if (status_code(st) != 0)
				log_err("the supervisor exited with status %d", status_code(st));
			bool orderly = status_code(st) == 0 || L->shutdown_sent;
			if (orderly || !restart_supervisor(L))
				supervisor_ended(L);
		} else if (pid == L->ls->cmd_pid) {
			L->cmd_done = true;
			L->cmd_status = st;
			log_info("command exited with status %d", status_code(st));
			ask_shutdown(L, "the command exited");
		} else {
			for (size_t i = 0; i < MAX_VMMS; i++) {
				if (L->vmm_pid[i] == pid) {
					L->vmm_pid[i] = 0;
					log_info("VMM pid %d exited with status %d", (int)pid, status_code(st));
					if (L->pasta_pid[i] > 0) /* its network goes with it */
						kill(L->pasta_pid[i], SIGTERM);
				}
				if (L->pasta_pid[i] == pid)
					L->pasta_pid[i] = 0;
			}
			for (int i = 0; i < HELPER__COUNT; i++)
				if (L->helper_pid[i] == pid) {
					L->helper_pid[i] = 0;
					log_info("%s (pid %d) exited with status %d", helper_name((enum helper_id)i),
						 (int)pid, status_code(st));
				}
		}
	}
}

static void on_signal(struct launcher *L)
{
	struct signalfd_siginfo si;
	while (read(L->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			reap(L);
			continue;
		}
		/* SIGINT/SIGTERM/SIGHUP: the command decides (it will exit, and we follow);
		 * without a command, stop the supervisor. A second one while stopping kills, if it
		 * comes later than SIGNAL_AGAIN_MS: one sent to the process group reaches the root
		 * waiter too, which passes it on, and that copy must not turn an orderly stop into
		 * a kill. */
		uint64_t now = now_mono_ms();
		bool again = L->first_signal_ms && now - L->first_signal_ms >= SIGNAL_AGAIN_MS;
		if (!L->first_signal_ms)
			L->first_signal_ms = now;
		if (L->ls->cmd_pid > 0 && !L->cmd_done)
			kill(L->ls->cmd_pid, (int)si.ssi_signo);
		else if (!L->shutdown_sent)
			ask_shutdown(L, "signal");
		else if (again && !L->sup_done)
			kill(L->sup_pid, SIGKILL);
	}
}

static bool helpers_left(const struct launcher *L)
{
	for (int i = 0; i < HELPER__COUNT; i++)
		if (L->helper_pid[i] > 0)
			return true;
	for (size_t i = 0; i < MAX_VMMS; i++)
		if (L->vmm_pid[i] > 0)
			return true;
	return false;
}

static void on_deadline(struct launcher *L)
{
	L->deadline_ms = 0;
	if (!L->ready) {
		log_err("the supervisor did not become ready in %d s", READY_TIMEOUT_MS / 1000);
		user_msg(L, "fcvm: the supervisor did not start; see %s/%s", L->ls->inst->state_dir, FCVM_LOG_NAME);
		if (L->ls->cmd_go >= 0) {
			close(L->ls->cmd_go); /* the command child sees EOF and gives up */
			L->ls->cmd_go = -1;
		}
		ask_shutdown(L, "not ready in time");
		return;
	}
	/* Stopping took too long: end it. */
	log_err("stop timed out; killing what is left");
	if (!L->sup_done)
		kill(L->sup_pid, SIGKILL);
	for (int i = 0; i < HELPER__COUNT; i++)
		if (L->helper_pid[i] > 0)
			kill(L->helper_pid[i], SIGKILL);
	for (size_t i = 0; i < MAX_VMMS; i++) {
		if (L->vmm_pid[i] > 0)
			kill(L->vmm_pid[i], SIGKILL);
		if (L->pasta_pid[i] > 0)
			kill(L->pasta_pid[i], SIGKILL);
	}
	if (L->ls->cmd_pid > 0 && !L->cmd_done)
		kill(L->ls->cmd_pid, SIGKILL);
}

int launcher_main(struct launcher_setup *ls, int spawner)
{
	static struct launcher L;
	char err[256];
	sigset_t mask;

	L.ls = ls;
	L.spawner = spawner;
	L.chan = -1;
	L.started_ms = now_realtime_ms();
	log_init("launcher");
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	L.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (L.sigfd < 0) {
		log_err("signalfd: %s", strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* every child the spawner starts is made ours (CLONE_PARENT); the grandchildren that
	 * QEMU's namespace set-up leaves behind come back to us too */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		log_err("subreaper: %s", strerror(errno));
		return 1;
	}
	L.tsc_khz = host_tsc_khz();
	L.kvm_usable = accel_kvm_usable("/sys");
	if (launcher_policy_limits(&L) < 0) {
		log_err("launcher.policy or netd.policy: vmm_cpus_max, vmm_mem_max or ports is malformed");
		return 1;
	}

	/* what the launcher proper keeps: the programs, the data directory and the control
	 * socket stay with the spawner */
	int keep[] = {spawner, ls->state_dirfd, ls->user_err, ls->lock_fd, L.sigfd, ls->cmd_go};
	struct sandbox_opts so = {.keep_fds = keep, .nkeep = ARRAY_LEN(keep)};
	if (sandbox_enter(&policy_launcher, &so, err, sizeof(err)) < 0) {
		log_err("sandbox: %s", err);
		user_msg(&L, "fcvm: launcher sandbox: %s", err);
		if (ls->cmd_pid > 0)
			kill(ls->cmd_pid, SIGKILL);
		return 1;
	}
	if (!start_supervisor(&L)) {
		user_msg(&L, "fcvm: the supervisor did not start; see %s/%s", ls->inst->state_dir, FCVM_LOG_NAME);
		if (ls->cmd_pid > 0)
			kill(ls->cmd_pid, SIGKILL);
		return 1;
	}
	L.deadline_ms = now_mono_ms() + READY_TIMEOUT_MS;

	/* Until the supervisor, the command and every helper are gone. */
	while (!L.sup_done || (ls->cmd_pid > 0 && !L.cmd_done) || helpers_left(&L)) {
		struct pollfd pf[2] = {{.fd = L.sigfd, .events = POLLIN}, {.fd = L.chan, .events = POLLIN}};
		int timeout = -1;
		if (L.deadline_ms) {
			uint64_t now = now_mono_ms();
			timeout = L.deadline_ms > now ? (int)(L.deadline_ms - now) : 0;
		}
		int n = poll(pf, L.chan >= 0 ? 2 : 1, timeout);
		if (n < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			break;
		}
		if (n == 0 && L.deadline_ms) {
			on_deadline(&L);
			continue;
		}
		if (pf[0].revents)
			on_signal(&L);
		if (L.chan >= 0 && pf[1].revents && !launcher_read_channel(&L)) {
			/* The supervisor is stopping (its end closed: the SIGCHLD may still be on
			 * its way), or misbehaved and now sees our end close, which stops it. Its
			 * helpers follow as their channels close. It gets the stop deadline rather
			 * than a signal: a SIGTERM racing its last clean-up would turn an orderly
			 * exit into a kill. Its exit status decides the rest (reap): an orderly
			 * stop ends the instance, a death restarts it. */
			close(L.chan);
			L.chan = -1;
			if (!L.deadline_ms) /* it exits by then, or is killed (and restarted) */
				L.deadline_ms = now_mono_ms() + STOP_TIMEOUT_MS;
		}
	}
	unlinkat(ls->state_dirfd, FCVM_SOCKET_NAME, 0);
	log_info("stopped");
	if (ls->cmd_pid > 0)
		return status_code(L.cmd_status);
	return status_code(L.sup_status); /* 0: an orderly stop (signal, or a client's shutdown) */
}
