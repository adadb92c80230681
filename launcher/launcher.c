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
#include "supervisor/launcher.h"
#include "supervisor/supervisor.h"

#define READY_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS	 10000

struct launcher {
	struct launcher_setup *ls;
	pid_t helper_pid[HELPER__COUNT];
	pid_t vmm_pid[MAX_VMMS];   /* 0: free slot */
	pid_t pasta_pid[MAX_VMMS]; /* the rootless network of vmm_pid[i], or 0 */
	int sigfd;
	bool cmd_done, sup_done, ready, shutdown_sent;
	unsigned sup_restarts;	    /* within the current window */
	uint64_t restart_window_ms; /* start of that window */
	int cmd_status, sup_status;
	uint64_t started_ms, deadline_ms; /* deadline: 0 = none */
	uint32_t next_id;
};

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

/* ---- spawning a helper (runs in the child between fork and exec) ---- */

static int write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, data, strlen(data));
	int rc = n == (ssize_t)strlen(data) ? 0 : -errno;
	close(fd);
	return rc;
}

int launcher_enter_userns(int more_ns, uid_t inner_uid, gid_t inner_gid)
{
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();
	/* The launcher is non-dumpable, and so is this fork of it: its /proc/self files then
	 * belong to root and it could not write its own maps. It execs right after; the child
	 * makes itself non-dumpable again in its sandbox. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		return -errno;
	if (unshare(CLONE_NEWUSER | more_ns) < 0)
		return -errno;
	if (write_file("/proc/self/setgroups", "deny") < 0)
		return -errno;
	snprintf(map, sizeof(map), "%u %u 1", (unsigned)inner_uid, (unsigned)uid);
	if (write_file("/proc/self/uid_map", map) < 0)
		return -errno;
	snprintf(map, sizeof(map), "%u %u 1", (unsigned)inner_gid, (unsigned)gid);
	if (write_file("/proc/self/gid_map", map) < 0)
		return -errno;
	return 0;
}

/* System mode: the helper is exec'd as uid 0 under SECBIT_NOROOT, so it starts with exactly
 * these caps (its own, plus what it needs to switch to its uid and lock itself down). */
static int pass_caps(const struct sandbox_policy *p)
{
	cap_value_t caps[CAP_LAST_CAP + 1];
	size_t n = 0;
	for (size_t i = 0; i < p->ncaps && n < ARRAY_LEN(caps); i++)
		caps[n++] = p->caps[i];
	caps[n++] = CAP_SETUID;
	caps[n++] = CAP_SETGID;
	caps[n++] = CAP_SETPCAP;
	return sandbox_pass_caps_on_exec(caps, n);
}

static __attribute__((noreturn)) void exec_helper(struct launcher *L, enum helper_id id, int chan)
{
	const struct instance *in = L->ls->inst;
	const char *name = helper_name(id);
	char prog[32], uid[16], gid[16];
	sigset_t all;
	int rc;

	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	if (dup2(chan, FCVM_HELPER_CHANNEL_FD) < 0 || dup2(L->ls->devnull, 0) < 0 || dup2(2, 1) < 0)
		_exit(126);
	if (chan == FCVM_HELPER_CHANNEL_FD)
		fcntl(chan, F_SETFD, 0);
	/* only stored sees the data directory */
	if (id == HELPER_STORED && dup2(L->ls->data_fd, FCVM_HELPER_DATA_FD) < 0)
		_exit(126);
	snprintf(prog, sizeof(prog), "fcvm-%s", name);
	snprintf(uid, sizeof(uid), "%u", (unsigned)in->helper_uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)in->helper_gid);
	if (in->system_mode)
		rc = pass_caps(sandbox_policy_by_name(name));
	else
		rc = launcher_enter_userns(0, 0, 0); /* root in there, our uid outside */
	if (rc < 0) {
		log_err("%s: cannot prepare its %s: %s", name, in->system_mode ? "capabilities" : "user namespace",
			strerror(-rc));
		_exit(126);
	}
	char *const sys_argv[] = {prog,	   "--mode", "system",	   "--uid",	    uid,
				  "--gid", gid,	     "--instance", (char *)in->tag, NULL};
	char *const rl_argv[] = {prog, "--mode", "rootless", "--instance", (char *)in->tag, NULL};
	char *const envp[] = {NULL};
	syscall(SYS_execveat, L->ls->exe_fd[id], "", in->system_mode ? sys_argv : rl_argv, envp, AT_EMPTY_PATH);
	log_err("%s: exec: %s", name, strerror(errno));
	_exit(127);
}

static void serve_spawn(struct launcher *L, const struct pmsg *req, struct pmsg *rep)
{
	const char *name = prec_str(&req->body, "helper");
	int id = helper_by_name(name);
	int sv[2];
	if (id < 0) {
		log_audit("refused spawn of '%s': not a helper", name);
		pmsg_set_error(rep, PE_DENIED, "'%s' is not a helper", name);
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
	pid_t pid = fork();
	if (pid < 0) {
		pmsg_set_error(rep, PE_INTERNAL, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return;
	}
	if (pid == 0) {
		close(sv[0]);
		exec_helper(L, (enum helper_id)id, sv[1]);
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
	pid_t pid = vmm_spawn(L->ls, req, rep);
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
		log_audit("refused pasta for pid %llu: not a VMM of ours, or it has one", (unsigned long long)vmm);
		pmsg_set_error(rep, PE_DENIED, "pid %llu is not a VMM without a network", (unsigned long long)vmm);
		return;
	}
	pid_t pid = pasta_spawn(L->ls, req, rep);
	if (pid > 0)
		L->pasta_pid[slot] = pid;
}

static void serve_ready(struct launcher *L)
{
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

static void handle_request(struct launcher *L, const struct pmsg *req)
{
	struct pmsg rep;
	pmsg_init_reply(&rep, req);
	switch (req->op->id) {
	case OP_SPAWN:
		serve_spawn(L, req, &rep);
		break;
	case OP_VMM_SPAWN:
	case OP_VMM_SPAWN_NET:
		serve_vmm_spawn(L, req, &rep);
		break;
	case OP_PASTA_SPAWN:
		serve_pasta_spawn(L, req, &rep);
		break;
	case OP_READY:
		serve_ready(L);
		break;
	case OP_PING:
		if (procinfo_fill(&rep, &rep.body, "launcher", L->ls->inst->mode_name, L->started_ms) < 0)
			pmsg_set_error(&rep, PE_INTERNAL, "launcher cannot describe itself");
		break;
	default:
		log_audit("refused '%s' from the supervisor", req->op->name);
		pmsg_set_error(&rep, PE_DENIED, "the launcher does not serve '%s'", req->op->name);
	}
	struct perr e;
	int rc = chan_send_msg(L->ls->chan, &rep, &e);
	if (rc < 0)
		log_err("reply to %s not sent: %s", req->op->name, strerror(-rc));
	pmsg_free(&rep);
}

/* Returns false when the channel is gone. */
static bool read_channel(struct launcher *L)
{
	struct pmsg m;
	struct perr e = {0};
	int r = chan_recv_msg(L->ls->chan, &m, &e);
	if (r <= 0)
		return false;
	if (e.code == PE_MALFORMED) {
		log_audit("malformed frame from the supervisor: %s", e.msg);
		pmsg_free(&m);
		return false;
	}
	if (m.kind == PK_REQUEST && e.code == PE_OK)
		handle_request(L, &m);
	else if (m.kind == PK_REQUEST)
		log_audit("refused request from the supervisor: %s", e.msg);
	/* replies (to our shutdown request) need no action */
	pmsg_free(&m);
	return true;
}

static void ask_shutdown(struct launcher *L, const char *why)
{
	if (L->shutdown_sent || L->sup_done || L->ls->chan < 0)
		return;
	L->shutdown_sent = true;
	L->deadline_ms = now_mono_ms() + STOP_TIMEOUT_MS;
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_SHUTDOWN, ++L->next_id);
	prec_set_str(&req, &req.body, "reason", why);
	chan_send_msg(L->ls->chan, &req, NULL);
	pmsg_free(&req);
}

#define SUP_RESTARTS_MAX      5 /* in one window: a supervisor that keeps dying ends the instance */
#define SUP_RESTART_WINDOW_MS 60000

/* A supervisor that died (killed, crashed) is started again; its VMs keep running under this
 * launcher and the new one re-attaches to them (supervisor/vm_record.c). */
static bool restart_supervisor(struct launcher *L)
{
	uint64_t now = now_mono_ms();
	if (now - L->restart_window_ms > SUP_RESTART_WINDOW_MS) {
		L->restart_window_ms = now;
		L->sup_restarts = 0;
	}
	if (++L->sup_restarts > SUP_RESTARTS_MAX || L->ls->listen_fd < 0) {
		log_err("the supervisor died %u times within %d s; stopping", L->sup_restarts - 1,
			SUP_RESTART_WINDOW_MS / 1000);
		return false;
	}
	int sv[2];
	if (chan_pair(sv) < 0)
		return false;
	pid_t pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return false;
	}
	if (pid == 0) {
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		close(sv[0]);
		if (dup2(L->ls->devnull, 0) < 0 || dup2(2, 1) < 0) /* 2: the log */
			_exit(1);
		_exit(supervisor_main(L->ls->inst, L->ls->listen_fd, sv[1]));
	}
	close(sv[1]);
	if (L->ls->chan >= 0)
		close(L->ls->chan);
	L->ls->chan = sv[0];
	L->ls->sup_pid = pid;
	L->sup_done = false;
	L->deadline_ms = 0;
	log_info("supervisor restarted as pid %d", (int)pid);
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
		if (pid == L->ls->sup_pid) {
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
		 * without a command, stop the supervisor. A second one while stopping kills. */
		if (L->ls->cmd_pid > 0 && !L->cmd_done)
			kill(L->ls->cmd_pid, (int)si.ssi_signo);
		else if (!L->shutdown_sent)
			ask_shutdown(L, "signal");
		else if (!L->sup_done)
			kill(L->ls->sup_pid, SIGKILL);
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
		kill(L->ls->sup_pid, SIGKILL);
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

int launcher_main(struct launcher_setup *ls)
{
	struct launcher L = {.ls = ls, .started_ms = now_realtime_ms()};
	char err[256];
	sigset_t mask;

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

	int keep[] = {ls->data_fd,   ls->chan,	     ls->devnull,   ls->state_dirfd, ls->user_err,
		      ls->lock_fd,   L.sigfd,	     ls->cmd_go,    ls->exe_fd[0],   ls->exe_fd[1],
		      ls->exe_fd[2], ls->vmm_exe_fd, ls->listen_fd, ls->pasta_exe_fd};
	struct sandbox_opts so = {.keep_fds = keep, .nkeep = ARRAY_LEN(keep)};
	if (sandbox_enter(&policy_launcher, &so, err, sizeof(err)) < 0) {
		log_err("sandbox: %s", err);
		user_msg(&L, "fcvm: launcher sandbox: %s", err);
		kill(ls->sup_pid, SIGKILL);
		if (ls->cmd_pid > 0)
			kill(ls->cmd_pid, SIGKILL);
		return 1;
	}
	L.deadline_ms = now_mono_ms() + READY_TIMEOUT_MS;

	/* Until the supervisor, the command and every helper are gone. */
	while (!L.sup_done || (ls->cmd_pid > 0 && !L.cmd_done) || helpers_left(&L)) {
		struct pollfd pf[2] = {{.fd = L.sigfd, .events = POLLIN}, {.fd = ls->chan, .events = POLLIN}};
		int timeout = -1;
		if (L.deadline_ms) {
			uint64_t now = now_mono_ms();
			timeout = L.deadline_ms > now ? (int)(L.deadline_ms - now) : 0;
		}
		int n = poll(pf, ls->chan >= 0 ? 2 : 1, timeout);
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
		if (ls->chan >= 0 && pf[1].revents && !read_channel(&L)) {
			/* The supervisor is stopping (its end closed: the SIGCHLD may still be on
			 * its way), or misbehaved and now sees our end close, which stops it. Its
			 * helpers follow as their channels close. It gets the stop deadline rather
			 * than a signal: a SIGTERM racing its last clean-up would turn an orderly
			 * exit into a kill. Its exit status decides the rest (reap): an orderly
			 * stop ends the instance, a death restarts it. */
			close(ls->chan);
			ls->chan = -1;
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
