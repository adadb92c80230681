/* The spawner: forked by the launcher before the launcher loads its filter, so what it
 * starts runs under its own policy alone. It has no filter of its own (a filter here would
 * stack onto every child for life); what keeps it small is what it listens to: one
 * socketpair from the launcher proper, fixed-size orders, and a table that decides for
 * each program which uid, capabilities, namespaces and fds it gets. The command line of a
 * helper or of the supervisor is built here from the instance; only QEMU's and pasta's
 * come with the order, built by the launcher proper from typed, checked requests. Each
 * child is made the launcher's (CLONE_PARENT): the launcher reaps and signals them. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/vmconfig.h"
#include "common/util.h"
#include "launcher/launcher.h"
#include "policy/sandbox.h"
#include "proto/chan.h"

#define FIRST_FD 3

struct prog_spec {
	const char *argv0;
	const struct sandbox_policy *policy; /* whose capabilities the program starts with */
	unsigned min_fds, max_fds;	     /* attached to the order */
	bool order_args;		     /* its argv comes with the order (QEMU, pasta) */
};

static const struct prog_spec specs[PROG__COUNT] = {
    [PROG_SUPERVISOR] = {"fcvm-supervisor", &policy_supervisor, 1, 1, false},
    [PROG_NETD] = {"fcvm-netd", &policy_netd, 1, 1, false},
    [PROG_STORED] = {"fcvm-stored", &policy_stored, 1, 1, false},
    [PROG_UFFDD] = {"fcvm-uffdd", &policy_uffdd, 1, 1, false},
    [PROG_QEMU] = {"qemu-system-x86_64", &policy_vmm_qemu, VFD__COUNT, VFD__COUNT + 3, true},
    [PROG_PASTA] = {"pasta", &policy_vmm_qemu, 4, 4, true},
};

static const enum helper_id prog_helper[PROG__COUNT] = {
    [PROG_NETD] = HELPER_NETD, [PROG_STORED] = HELPER_STORED, [PROG_UFFDD] = HELPER_UFFDD};

static bool is_helper(enum prog p)
{
	return p == PROG_NETD || p == PROG_STORED || p == PROG_UFFDD;
}

uid_t vmm_ids(const struct launcher_setup *ls, unsigned slot, gid_t *gid)
{
	const struct instance *in = ls->inst;
	if (!in->system_mode) {
		*gid = getgid();
		return getuid();
	}
	*gid = ls->vmm_uids ? ls->vmm_gid_base + slot : in->vmm_gid;
	return ls->vmm_uids ? ls->vmm_uid_base + slot : in->vmm_uid;
}

/* ---- in the child ---- */

static __attribute__((noreturn)) void die(const char *what, int neg)
{
	log_err("spawn: %s: %s", what, strerror(-neg));
	_exit(126);
}

/* fds[i] -> FIRST_FD + i; out (an index, or -1) -> stdout and stderr; stdin -> /dev/null;
 * everything else closed but the program (returned, close-on-exec, above the rest) and
 * report (if >= 0), right after the program. */
static int place_fds(const int *fds, unsigned n, int out, int devnull, int exe, int report)
{
	int high[SPAWN_FDS_MAX + 2];
	if (n > SPAWN_FDS_MAX || out >= (int)n)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if ((high[i] = fcntl(fds[i], F_DUPFD, 64)) < 0)
			return -errno;
	int exe_high = fcntl(exe, F_DUPFD_CLOEXEC, 64), null_high = fcntl(devnull, F_DUPFD, 64);
	int report_high = report >= 0 ? fcntl(report, F_DUPFD_CLOEXEC, 64) : -1;
	if (exe_high < 0 || null_high < 0 || (report >= 0 && report_high < 0))
		return -errno;
	if (dup2(null_high, 0) < 0 || (out >= 0 && (dup2(high[out], 1) < 0 || dup2(high[out], 2) < 0)) ||
	    (out < 0 && dup2(2, 1) < 0))
		return -errno;
	for (unsigned i = 0; i < n; i++)
		if (dup2(high[i], FIRST_FD + (int)i) < 0)
			return -errno;
	int prog = FIRST_FD + (int)n;
	if (dup3(exe_high, prog, O_CLOEXEC) < 0 || (report >= 0 && dup3(report_high, prog + 1, O_CLOEXEC) < 0) ||
	    syscall(SYS_close_range, prog + (report >= 0 ? 2 : 1), ~0U, 0) < 0)
		return -errno;
	return prog;
}

int spawn_become(uid_t uid, gid_t gid, const struct sandbox_policy *p)
{
	cap_value_t caps[CAP_LAST_CAP + 2];
	size_t n = 0;
	static const struct sandbox_policy none = {.name = "child"};
	/* keep what we hold (securebits NO_SETUID_FIXUP) through the uid switch */
	int rc = sandbox_drop_caps(&policy_spawner, true, uid, gid);
	if (rc < 0 || !p || (!p->ncaps && !p->empty_root))
		return rc < 0 ? rc : sandbox_drop_caps(&none, false, 0, 0);
	for (size_t i = 0; i < p->ncaps && n < ARRAY_LEN(caps) - 2; i++)
		caps[n++] = p->caps[i];
	caps[n++] = CAP_SETPCAP;
	if (p->empty_root) /* its empty root (stage 3), dropped at stage 4 */
		caps[n++] = CAP_SYS_ADMIN;
	return sandbox_pass_caps_on_exec(caps, n);
}

static __attribute__((noreturn)) void exec_prog(int exe, char **argv)
{
	char *const envp[] = {NULL};
	syscall(SYS_execveat, exe, "", argv, envp, AT_EMPTY_PATH);
	log_err("spawn: exec %s: %s", argv[0], strerror(errno));
	_exit(127);
}

/* The argv of a program whose command line the spawner makes itself. */
static int own_args(const struct launcher_setup *ls, enum prog p, char **argv, size_t max, char *buf, size_t len)
{
	const struct instance *in = ls->inst;
	if (p == PROG_SUPERVISOR)
		return instance_args(in, argv, max, buf, len);
	int n = snprintf(buf, len, "--mode=%s%c--instance=%s", in->system_mode ? "system" : "rootless", 0, in->tag);
	if (n < 0 || (size_t)n >= len || max < 3)
		return -1;
	argv[0] = buf;
	argv[1] = buf + strlen(buf) + 1;
	argv[2] = NULL;
	return 2;
}

static __attribute__((noreturn)) void child(const struct launcher_setup *ls, const struct spawn_order *o,
					    const int *fds, unsigned nfds, int report)
{
	const struct instance *in = ls->inst;
	enum prog p = (enum prog)o->prog;
	char *argv[SPAWN_ARGS_MAX + 2], buf[1024];
	int rc;
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	signal(SIGPIPE, SIG_DFL); /* an ignored SIGPIPE survives exec (pasta takes it for a failure) */
	argv[0] = (char *)specs[p].argv0;
	if (specs[p].order_args) {
		const char *s = o->args;
		for (uint32_t i = 0; i < o->nargs; i++, s += strlen(s) + 1)
			argv[i + 1] = (char *)s;
		argv[o->nargs + 1] = NULL;
	} else if (own_args(ls, p, argv + 1, ARRAY_LEN(argv) - 1, buf, sizeof(buf)) < 0) {
		die("arguments", -E2BIG);
	}
	/* the supervisor: the control socket (the spawner's, the same for every start) on 3,
	 * its channel to the launcher on 4, STATE_DIR/vms on 5 */
	int sup_fds[3] = {ls->listen_fd, nfds ? fds[0] : -1, ls->vms_fd};
	/* stored: its channel on 3, the data directory on 4 (only stored sees it) */
	int stored_fds[2] = {nfds ? fds[0] : -1, ls->data_fd};
	if (p == PROG_SUPERVISOR) {
		fds = sup_fds;
		nfds = 3;
	} else if (p == PROG_STORED) {
		fds = stored_fds;
		nfds = 2;
	}
	if (p == PROG_QEMU) {
		/* its cgroup while still the spawner's uid (the cgroup's files are not the VM's);
		 * why not, to the spawner, which tells the supervisor */
		char why[256];
		if ((rc = vmm_cgroup_enter(&ls->cg, o->slot, &o->limits, why, sizeof(why))) < 0) {
			dprintf(report, "!%s\n", why);
			die(why, rc);
		}
	}
	int exe = place_fds(fds, nfds, o->out_fd, ls->devnull, ls->exe_fd[p], report);
	if (exe < 0)
		die("fds", exe);
	/* Every process in a session of its own: a signal to the instance's process group (the
	 * user's Ctrl-C, timeout's SIGTERM, kill -TERM -PGID) reaches the launcher alone, which
	 * stops everything in order; a helper it reached too would die before cleaning up. */
	setsid();

	if (p == PROG_QEMU) {
		gid_t gid;
		uid_t uid = vmm_ids(ls, o->slot, &gid);
		if ((rc = in->system_mode ? spawn_become(uid, gid, NULL) : 0) < 0)
			die("the VMM's uid", rc);
		vmm_jail_exec(exe, exe + 1, argv);
	}
	if (p == PROG_PASTA) {
		/* the uid that owns the VM's namespaces (netd's); no capabilities on the host */
		rc = in->system_mode ? spawn_become(in->helper_uid[HELPER_NETD], in->helper_gid[HELPER_NETD], NULL) : 0;
		if (rc < 0 || (rc = sandbox_no_new_privs()) < 0)
			die("pasta's uid", rc);
		exec_prog(exe, argv);
	}
	if (in->system_mode) {
		uid_t uid = p == PROG_SUPERVISOR ? in->sup_uid : in->helper_uid[prog_helper[p]];
		gid_t gid = p == PROG_SUPERVISOR ? in->sup_gid : in->helper_gid[prog_helper[p]];
		rc = spawn_become(uid, gid, specs[p].policy);
	} else {
		rc = is_helper(p) ? sandbox_userns(0, 0, 0) : 0; /* root in there, the user outside */
	}
	if (rc < 0)
		die(specs[p].argv0, rc);
	exec_prog(exe, argv);
}

/* ---- the spawner's loop ---- */

/* The order is what the table allows: a known program, its fd count, its argv well formed. */
static int check_order(const struct spawn_order *o, unsigned nfds, char *msg, size_t len)
{
	if (o->prog >= PROG__COUNT) {
		snprintf(msg, len, "no program %u", o->prog);
		return -EINVAL;
	}
	const struct prog_spec *s = &specs[o->prog];
	if (nfds < s->min_fds || nfds > s->max_fds || o->out_fd >= (int32_t)nfds || o->out_fd < -1) {
		snprintf(msg, len, "%s takes %u to %u fds, not %u", s->argv0, s->min_fds, s->max_fds, nfds);
		return -EINVAL;
	}
	if (o->prog == PROG_QEMU && o->slot >= MAX_VMMS) {
		snprintf(msg, len, "no VM slot %u", o->slot);
		return -EINVAL;
	}
	if (!s->order_args && o->nargs) {
		snprintf(msg, len, "%s's command line is the spawner's own", s->argv0);
		return -EINVAL;
	}
	if (!s->order_args)
		return 0;
	if (o->nargs > SPAWN_ARGS_MAX || o->args[SPAWN_ARGS_BYTES - 1] != '\0') {
		snprintf(msg, len, "malformed arguments");
		return -EINVAL;
	}
	size_t off = 0;
	for (uint32_t i = 0; i < o->nargs; i++) {
		if (off >= SPAWN_ARGS_BYTES) {
			snprintf(msg, len, "malformed arguments");
			return -EINVAL;
		}
		off += strlen(o->args + off) + 1;
	}
	return 0;
}

/* QEMU's first child only makes its namespaces: the pid that counts is its child's, QEMU
 * itself (PID 1 of its namespace), which it reports through a pipe before it exits. */
static pid_t start(const struct launcher_setup *ls, const struct spawn_order *o, const int *fds, unsigned nfds,
		   char *msg, size_t len)
{
	int rp[2] = {-1, -1};
	if (o->prog == PROG_QEMU && pipe2(rp, O_CLOEXEC) < 0) {
		snprintf(msg, len, "pipe: %s", strerror(errno));
		return -errno;
	}
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		if (rp[0] >= 0)
			close(rp[0]);
		child(ls, o, fds, nfds, rp[1]);
	}
	int e = errno;
	if (rp[1] >= 0)
		close(rp[1]);
	if (pid < 0) {
		if (rp[0] >= 0)
			close(rp[0]);
		snprintf(msg, len, "clone: %s", strerror(e));
		return -e;
	}
	if (rp[0] < 0)
		return pid;
	char line[256] = "";
	ssize_t n;
	while ((n = read(rp[0], line, sizeof(line) - 1)) < 0 && errno == EINTR)
		;
	close(rp[0]);
	uint64_t qpid = 0;
	line[n > 0 ? n : 0] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (line[0] == '!') { /* the child's own reason */
		snprintf(msg, len, "%s", line + 1);
		return -EPERM;
	}
	if (!parse_uint(line, INT32_MAX, &qpid) || qpid == 0) {
		snprintf(msg, len, "the VMM did not start (see its console file)");
		return -ECHILD;
	}
	return (pid_t)qpid;
}

static void serve(const struct launcher_setup *ls, int chan)
{
	static struct spawn_order o;
	int fds[SPAWN_FDS_MAX];
	size_t nfds = 0;
	for (;;) {
		struct spawn_result r = {0};
		long n = chan_recv(chan, &o, sizeof(o), fds, SPAWN_FDS_MAX, &nfds);
		if (n == 0 || (n < 0 && n != -EINTR && n != -EPROTO))
			_exit(0); /* the launcher is gone */
		if (n != (long)sizeof(o)) {
			r.pid = -EINVAL;
			snprintf(r.msg, sizeof(r.msg), "malformed order");
		} else if ((r.pid = check_order(&o, (unsigned)nfds, r.msg, sizeof(r.msg))) == 0) {
			r.pid = start(ls, &o, fds, (unsigned)nfds, r.msg, sizeof(r.msg));
		}
		if (r.pid < 0)
			log_audit("spawner refused an order: %s", r.msg);
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		nfds = 0;
		if (chan_send(chan, &r, sizeof(r), NULL, 0) < 0)
			_exit(0);
	}
}

int spawner_start(const struct launcher_setup *ls)
{
	int sv[2], rc = chan_pair(sv);
	if (rc < 0)
		return rc;
	pid_t pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(sv[0]);
		close(sv[1]);
		return rc;
	}
	if (pid == 0) {
		char err[256];
		log_init("spawner");
		close(sv[0]);
		/* the launcher decides about signals (and reaps what we start); we end with it */
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(0);
		int keep[] = {sv[1],
			      ls->devnull,
			      ls->data_fd,
			      ls->listen_fd,
			      ls->vms_fd,
			      ls->exe_fd[0],
			      ls->exe_fd[1],
			      ls->exe_fd[2],
			      ls->exe_fd[3],
			      ls->exe_fd[PROG_QEMU],
			      ls->exe_fd[PROG_PASTA],
			      vmm_cgroup_fd(&ls->cg, CG_MEMORY),
			      vmm_cgroup_fd(&ls->cg, CG_PIDS),
			      vmm_cgroup_fd(&ls->cg, CG_CPU)};
		struct sandbox_opts so = {.keep_fds = keep, .nkeep = ARRAY_LEN(keep)};
		if (sandbox_enter(&policy_spawner, &so, err, sizeof(err)) < 0) {
			log_err("%s", err);
			_exit(1);
		}
		serve(ls, sv[1]);
	}
	close(sv[1]);
	return sv[0];
}

pid_t spawner_ask(int chan, const struct spawn_order *o, const int *fds, unsigned nfds, char *msg, size_t len)
{
	struct spawn_result r;
	size_t got = 0;
	int rc = chan_send(chan, o, sizeof(*o), fds, nfds);
	if (rc < 0) {
		snprintf(msg, len, "the spawner is gone: %s", strerror(-rc));
		return rc;
	}
	long n;
	while ((n = chan_recv(chan, &r, sizeof(r), NULL, 0, &got)) == -EINTR)
		;
	if (n != (long)sizeof(r)) {
		snprintf(msg, len, "the spawner did not answer");
		return -EPIPE;
	}
	r.msg[sizeof(r.msg) - 1] = '\0';
	if (r.pid < 0)
		snprintf(msg, len, "%s", r.msg[0] ? r.msg : strerror(-r.pid));
	return r.pid;
}
