/* Every compiled policy's real seccomp filter, loaded in a throwaway process (no root needed:
 * only no_new_privs and the filter): what it forbids kills the whole process with SIGSYS,
 * what it allows runs (and fails normally on bad arguments), probed calls get ENOSYS,
 * i386 and x32 calls are killed, argument filters hold, and each process's real work
 * (a helper's channel loop, the supervisor's libevent loop) runs under its filter. */
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "common/config.h"
#include "policy/sandbox.h"
#include "proto/fdkind.h"
#include "tests/unit/check.h"

static const char *const all[] = {"supervisor", "launcher", "netd", "stored", "uffdd"};
static const char *const helpers[] = {"netd", "stored", "uffdd"};
#define NALL	 (sizeof(all) / sizeof(all[0]))
#define NHELPERS (sizeof(helpers) / sizeof(helpers[0]))

static const struct sandbox_policy *policy(const char *name)
{
	const struct sandbox_policy *p = sandbox_policy_by_name(name);
	CHECK(p != NULL);
	return p;
}

/* Run fn in a new process under p's filter (after pre, if any, runs unfiltered); return its
 * wait status. fn returns the exit code: 0 when what it saw was right. */
static int under_filter(const struct sandbox_policy *p, void (*pre)(void), int (*fn)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (pre)
			pre();
		if (sandbox_no_new_privs() < 0 || sandbox_seccomp(p) < 0)
			_exit(100);
		_exit(fn());
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	return st;
}

static bool killed(int st)
{
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS;
}

static bool ran_ok(int st)
{
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

#define CHECK_KILLED(p, pre, fn)                                                                                       \
	do {                                                                                                           \
		int _st = under_filter(p, pre, fn);                                                                    \
		if (!killed(_st))                                                                                      \
			fprintf(stderr, "%s: %s: status %#x, wanted SIGSYS\n", (p)->name, #fn, _st);                   \
		CHECK(killed(_st));                                                                                    \
	} while (0)
#define CHECK_RUNS(p, pre, fn)                                                                                         \
	do {                                                                                                           \
		int _st = under_filter(p, pre, fn);                                                                    \
		if (!ran_ok(_st))                                                                                      \
			fprintf(stderr, "%s: %s: status %#x, wanted exit 0\n", (p)->name, #fn, _st);                   \
		CHECK(ran_ok(_st));                                                                                    \
	} while (0)

/* ---- calls no policy allows ---- */

static int do_ptrace(void)
{
	syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
	return 0;
}

static int do_personality(void)
{
	syscall(SYS_personality, 0xffffffffUL);
	return 0;
}

static int do_mount(void)
{
	syscall(SYS_mount, "none", "/", "tmpfs", 0, NULL);
	return 0;
}

static int do_kexec_load(void)
{
	syscall(SYS_kexec_load, 0, 0, NULL, 0);
	return 0;
}

static int do_socket_inet(void)
{
	syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	return 0;
}

TEST(forbidden_syscalls_kill_every_policy)
{
	for (size_t i = 0; i < NALL; i++) {
		const struct sandbox_policy *p = policy(all[i]);
		CHECK_KILLED(p, NULL, do_ptrace);
		CHECK_KILLED(p, NULL, do_personality);
		CHECK_KILLED(p, NULL, do_mount);
		CHECK_KILLED(p, NULL, do_kexec_load);
		/* netd tries a host port with bind() before publishing it (a taken port is refused);
		 * the launcher's filter is a superset of netd's */
		if (strcmp(p->name, "netd") != 0 && strcmp(p->name, "launcher") != 0)
			CHECK_KILLED(p, NULL, do_socket_inet);
	}
}

/* ---- allowed calls fail normally on bad arguments ---- */

/* stderr onto a pipe: writing from a bad buffer must fail EFAULT, which /dev/null would not */
static void stderr_to_pipe(void)
{
	int p[2];
	if (pipe(p) < 0 || dup2(p[1], 2) < 0)
		_exit(101);
}

static int do_bad_args(void)
{
	if (syscall(SYS_close, -1) != -1 || errno != EBADF)
		return 1;
	if (syscall(SYS_write, 2, (void *)1, 10) != -1 || errno != EFAULT)
		return 2;
	if (syscall(SYS_capget, NULL, NULL) != -1 || errno != EFAULT)
		return 3;
	return 0;
}

TEST(allowed_calls_with_bad_arguments_fail_normally)
{
	for (size_t i = 0; i < NALL; i++)
		CHECK_RUNS(policy(all[i]), stderr_to_pipe, do_bad_args);
}

/* ---- probed calls: ENOSYS, so libc falls back ---- */

/* A policy that allows a probed call outright has opted out of its probe (stored resolves
 * every path with openat2; the launcher admits what stored does). */
static bool allows_outright(const struct sandbox_policy *p, int nr)
{
	for (size_t j = 0; j < p->nrules; j++)
		if (p->rules[j].nr == nr && p->rules[j].action == SB_ALLOW && p->rules[j].nargs == 0)
			return true;
	return false;
}

static bool probe_openat2; /* set before each fork */

static int do_probes(void)
{
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
		return 1;
	if (probe_openat2 && (syscall(SYS_openat2, AT_FDCWD, "/", NULL, 0) != -1 || errno != ENOSYS))
		return 2;
	if (syscall(SYS_faccessat2, AT_FDCWD, "/", F_OK, 0) != -1 || errno != ENOSYS)
		return 3;
	return 0;
}

TEST(probed_calls_get_enosys)
{
	for (size_t i = 0; i < NALL; i++) {
		probe_openat2 = !allows_outright(policy(all[i]), SCMP_SYS(openat2));
		CHECK_RUNS(policy(all[i]), NULL, do_probes);
	}
}

/* The probes are in the policy files (probes.inc, through libc-basics.inc), not built in. */
TEST(probes_come_from_the_policy_files)
{
	static const int probed[] = {SCMP_SYS(clone3), SCMP_SYS(openat2), SCMP_SYS(faccessat2)};
	for (size_t i = 0; i < NALL; i++) {
		const struct sandbox_policy *p = policy(all[i]);
		for (size_t k = 0; k < sizeof(probed) / sizeof(probed[0]); k++) {
			bool found = false;
			for (size_t j = 0; j < p->nrules; j++)
				found |= p->rules[j].nr == probed[k] && p->rules[j].action == SB_ENOSYS;
			CHECK(found || allows_outright(p, probed[k]));
		}
	}
}

/* ---- foreign ABIs ---- */

/* i386 getpid (20) through int 0x80 from a 64-bit process */
static int do_int80(void)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
	return 0;
}

/* the x32 ABI: the x86_64 number with __X32_SYSCALL_BIT */
static int do_x32(void)
{
	syscall(0x40000000L | SYS_getpid);
	return 0;
}

static int do_native_getpid(void)
{
	return syscall(SYS_getpid) > 0 ? 0 : 1;
}

TEST(foreign_abis_are_killed)
{
	for (size_t i = 0; i < NALL; i++) {
		const struct sandbox_policy *p = policy(all[i]);
		CHECK_RUNS(p, NULL, do_native_getpid);
		CHECK_KILLED(p, NULL, do_int80);
		CHECK_KILLED(p, NULL, do_x32);
	}
}

/* ---- argument filters ---- */

static int do_get_seccomp(void)
{
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2)
		return 1;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return 2;
	return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) >= 0 ? 0 : 3;
}

static int do_set_name(void)
{
	prctl(PR_SET_NAME, "x", 0, 0, 0);
	return 0;
}

static int do_set_mm(void)
{
	prctl(PR_SET_MM, PR_SET_MM_START_BRK, 0, 0, 0);
	return 0;
}

TEST(prctl_only_for_the_listed_options)
{
	for (size_t i = 0; i < NALL; i++) {
		const struct sandbox_policy *p = policy(all[i]);
		CHECK_RUNS(p, NULL, do_get_seccomp);
		CHECK_KILLED(p, NULL, do_set_name);
		CHECK_KILLED(p, NULL, do_set_mm);
	}
}

static int do_write_stdout(void)
{
	syscall(SYS_write, 1, "", 0);
	return 0;
}

static int do_write_stderr(void)
{
	return syscall(SYS_write, 2, "", 0) == 0 ? 0 : 1;
}

/* fd 3 is the channel; anything else is not the helper's to read */
static int do_recvmsg_channel(void)
{
	struct msghdr mh = {0};
	syscall(SYS_recvmsg, FCVM_HELPER_CHANNEL_FD, &mh, MSG_DONTWAIT);
	return 0;
}

static int do_recvmsg_other(void)
{
	struct msghdr mh = {0};
	syscall(SYS_recvmsg, 4, &mh, MSG_DONTWAIT);
	return 0;
}

static int do_mmap_exec(void)
{
	syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return 0;
}

static int do_mmap_data(void)
{
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return m != MAP_FAILED && munmap(m, 4096) == 0 ? 0 : 1;
}

TEST(helpers_use_only_their_channel_and_stderr)
{
	for (size_t i = 0; i < NHELPERS; i++) {
		const struct sandbox_policy *p = policy(helpers[i]);
		CHECK_RUNS(p, NULL, do_write_stderr);
		/* netd's namespace child writes its report to a pipe and its namespace's
		 * /proc/sys/net settings: fds that are not known when the filter is made */
		if (strcmp(p->name, "netd") != 0)
			CHECK_KILLED(p, NULL, do_write_stdout);
		CHECK_RUNS(p, NULL, do_recvmsg_channel);
		if (strcmp(p->name, "netd") != 0) /* netd: netlink replies (libmnl) on sockets it makes */
			CHECK_KILLED(p, NULL, do_recvmsg_other);
	}
}

TEST(no_executable_memory_once_sandboxed)
{
	for (size_t i = 0; i < NALL; i++) {
		const struct sandbox_policy *p = policy(all[i]);
		CHECK_RUNS(p, NULL, do_mmap_data);
		/* the launcher must map libraries for the helpers it execs */
		if (strcmp(p->name, "launcher") != 0)
			CHECK_KILLED(p, NULL, do_mmap_exec);
	}
}

static int do_unshare_user(void)
{
	syscall(SYS_unshare, CLONE_NEWUSER); /* may fail (no user namespaces here): not killed */
	return 0;
}

static int do_unshare_net(void)
{
	syscall(SYS_unshare, CLONE_NEWNET);
	return 0;
}

static int do_clone_newnet(void)
{
	long pid = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0)
		_exit(0);
	return 0;
}

static int do_fork(void)
{
	pid_t pid = fork(); /* clone3 (ENOSYS), then clone */
	if (pid == 0)
		_exit(7);
	int st;
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7 ? 0 : 1;
}

static int do_netlink_socket(void)
{
	syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0);
	return 0;
}

static int do_ficlone(void)
{
	syscall(SYS_ioctl, -1, FICLONE, 0);
	return 0;
}

static int do_execve(void)
{
	char *const argv[] = {"true", NULL};
	syscall(SYS_execve, "/nonexistent", argv, argv + 1);
	return 0;
}

static int do_setresuid(void)
{
	syscall(SYS_setresuid, -1, -1, -1);
	return 0;
}

static int do_socketpair_pipe(void)
{
	int sv[2], p[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(p, O_CLOEXEC) < 0)
		return 1;
	return kill(getpid(), 0) == 0 ? 0 : 1;
}

/* The launcher proper starts nothing itself (the spawner does, from before this filter): what
 * only a helper, a VMM or the spawner needs is refused under its filter. */
TEST(launcher_filter_refuses_what_only_its_children_need)
{
	const struct sandbox_policy *p = policy("launcher");
	CHECK_RUNS(p, NULL, do_socketpair_pipe);  /* its own work: channels, pasta's pipes, signals */
	CHECK_KILLED(p, NULL, do_netlink_socket); /* netd */
	CHECK_KILLED(p, NULL, do_ficlone);	  /* stored */
	CHECK_KILLED(p, NULL, do_socket_inet);	  /* netd's port check */
	CHECK_KILLED(p, NULL, do_fork);		  /* the spawner */
	CHECK_KILLED(p, NULL, do_execve);
	CHECK_KILLED(p, NULL, do_unshare_user);
	CHECK_KILLED(p, NULL, do_mount);     /* a VMM's jail */
	CHECK_KILLED(p, NULL, do_setresuid); /* a child's uid */
	CHECK_KILLED(p, NULL, do_clone_newnet);
	/* nobody but the spawner (unfiltered) forks at all; netd's namespace child is its own rule */
	for (size_t i = 0; i < NALL; i++)
		if (strcmp(all[i], "netd") != 0)
			CHECK_KILLED(policy(all[i]), NULL, do_fork);
}

static int do_getsockopt_peercred(void)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	return getsockopt(-1, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 && errno == EBADF ? 0 : 1;
}

static int do_getsockopt_tcp(void)
{
	int v;
	socklen_t len = sizeof(v);
	getsockopt(-1, IPPROTO_TCP, 1, &v, &len);
	return 0;
}

TEST(supervisor_socket_options_only_at_socket_level)
{
	const struct sandbox_policy *p = policy("supervisor");
	CHECK_RUNS(p, NULL, do_getsockopt_peercred);
	CHECK_KILLED(p, NULL, do_getsockopt_tcp);
}

/* ---- the real work of each process, under its filter ---- */

static int kind_fds[3]; /* a seqpacket socket, a regular file, a directory */

static void open_kind_fds(void)
{
	int sv[2];
	char path[] = "/tmp/fcvm-sbx.XXXXXX";
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0 || (kind_fds[1] = mkstemp(path)) < 0 ||
	    (kind_fds[2] = open("/", O_RDONLY | O_DIRECTORY)) < 0)
		_exit(101);
	unlink(path);
	kind_fds[0] = sv[0];
}

/* A frame's fds are checked as it is decoded, whoever sent it: every kind check must run
 * (and answer) under every filter, or a peer could have the process killed. */
static int do_fd_kinds(void)
{
	static const enum fd_kind kinds[] = {FDK_ANY,	      FDK_FILE, FDK_DIR,       FDK_NETNS,
					     FDK_USERFAULTFD, FDK_TAP,	FDK_SEQPACKET, FDK_SOCKET};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		for (size_t k = 0; k < 3; k++)
			fd_is_kind(kind_fds[k], kinds[i]);
	if (!fd_is_kind(kind_fds[0], FDK_SEQPACKET) || !fd_is_kind(kind_fds[1], FDK_FILE) ||
	    !fd_is_kind(kind_fds[2], FDK_DIR) || fd_is_kind(kind_fds[1], FDK_SOCKET))
		return 1;
	return 0;
}

TEST(fd_kind_checks_run_under_every_filter)
{
	for (size_t i = 0; i < NALL; i++)
		CHECK_RUNS(policy(all[i]), open_kind_fds, do_fd_kinds);
}

static void helper_channel(void)
{
	int sv[2], peer;
	/* the peer's end above fd 3, which the channel takes */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0 || (peer = fcntl(sv[0], F_DUPFD, 10)) < 0 ||
	    dup2(sv[1], FCVM_HELPER_CHANNEL_FD) < 0)
		_exit(101);
	/* stderr a character device, as a terminal would be: stdio then asks isatty() */
	int null = open("/dev/null", O_WRONLY);
	if (null < 0 || dup2(null, 2) < 0)
		_exit(103);
	/* the supervisor's request, waiting on the channel; its end stays open for the reply */
	if (send(peer, "req", 3, 0) != 3)
		_exit(102);
}

/* What a helper does today: receive a request with an fd, check and close the fd, answer
 * with an fd, log, describe itself. */
static int do_helper_loop(void)
{
	char buf[64], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	int fd = -1;
	struct sandbox_report r;

	if (recvmsg(FCVM_HELPER_CHANNEL_FD, &mh, 0) != 3)
		return 2;
	mh.msg_controllen = sizeof(cbuf);
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	fd = 2;
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	iov.iov_len = 3;
	if (sendmsg(FCVM_HELPER_CHANNEL_FD, &mh, 0) != 3)
		return 3;
	if (fd_is_kind(2, FDK_ANY) != true)
		return 4;
	dprintf(2, "sbx_policy: a helper's log line, through vdprintf\n");
	fprintf(stderr, "sbx_policy: a helper's log line, through fprintf\n");
	if (sandbox_report_self(&r) < 0 || r.seccomp != 2 || !r.no_new_privs)
		return 5;
	char *m = malloc(1 << 20); /* malloc's mmap path */
	if (!m)
		return 6;
	free(m);
	uid_t uid = getuid();
	gid_t gid = getgid();
	return uid != (uid_t)-1 && gid != (gid_t)-1 ? 0 : 7;
}

TEST(helper_loop_runs_under_each_helper_filter)
{
	for (size_t i = 0; i < NHELPERS; i++)
		CHECK_RUNS(policy(helpers[i]), helper_channel, do_helper_loop);
}

/* ---- the supervisor: a libevent loop, as sup_main.c sets it up ---- */

static int sup_sock = -1; /* our end of a client connection */

static void sup_pre(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		_exit(101);
	sup_sock = sv[1];
	/* a client writes first; SIGTERM arrives once the loop runs */
	if (write(sv[0], "ping", 4) != 4)
		_exit(102);
	signal(SIGPIPE, SIG_IGN);
	pid_t parent = getpid();
	if (fork() == 0) {
		char b[4];
		ssize_t n = read(sv[0], b, sizeof(b)); /* the echo: the loop is running */
		kill(parent, n == 4 ? SIGTERM : SIGKILL);
		_exit(0);
	}
}

static void sup_echo(struct bufferevent *bev, void *arg)
{
	(void)arg;
	bufferevent_write_buffer(bev, bufferevent_get_input(bev));
}

static void sup_term(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

static int do_supervisor_loop(void)
{
	struct event_config *cfg = event_config_new();
	event_config_avoid_method(cfg, "poll");
	event_config_avoid_method(cfg, "select");
	struct event_base *base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (!base || strcmp(event_base_get_method(base), "epoll") != 0)
		return 1;
	struct bufferevent *bev = bufferevent_socket_new(base, sup_sock, BEV_OPT_CLOSE_ON_FREE);
	struct event *term = evsignal_new(base, SIGTERM, sup_term, base);
	if (!bev || !term || evsignal_add(term, NULL) < 0)
		return 2;
	bufferevent_setcb(bev, sup_echo, NULL, NULL, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (event_base_dispatch(base) < 0)
		return 3;
	bufferevent_free(bev);
	event_free(term);
	event_base_free(base);
	return 0;
}

TEST(supervisor_libevent_loop_runs_under_its_filter)
{
	CHECK_RUNS(policy("supervisor"), sup_pre, do_supervisor_loop);
}

/* ---- the compiled policies themselves ---- */

TEST(every_policy_builds_a_filter)
{
	for (size_t i = 0; i < NALL; i++) {
		const struct sandbox_policy *p = policy(all[i]);
		CHECK_STR(p->name, all[i]);
		scmp_filter_ctx ctx = sandbox_build_filter(p);
		CHECK(ctx != NULL);
		seccomp_release(ctx);
		for (size_t j = 0; j < p->nrules; j++)
			CHECK(p->rules[j].nr >= 0 && p->rules[j].nargs <= 3);
	}
	CHECK(sandbox_policy_by_name("nope") == NULL);
	CHECK(sandbox_policy_by_name(NULL) == NULL);
}

/* allowed outright (a rule on its arguments is checked by the kill tests above) */
static bool has_syscall(const struct sandbox_policy *p, int nr)
{
	for (size_t j = 0; j < p->nrules; j++)
		if (p->rules[j].nr == nr && p->rules[j].action == SB_ALLOW && p->rules[j].nargs == 0)
			return true;
	return false;
}

/* The launcher's filter is its own: none of the calls its children's policies add for their
 * work is in it, the spawner has none at all and hands capabilities on, the launcher none. */
TEST(launcher_filter_is_its_own_not_its_childrens)
{
	const struct sandbox_policy *l = policy("launcher"), *sp = policy("spawner");
	CHECK(!l->allow_ambient && !l->unfiltered);
	CHECK(sp->unfiltered && sp->allow_ambient && sp->nrules == 0);
	static const int only_children[] = {SCMP_SYS(execve),	 SCMP_SYS(execveat), SCMP_SYS(clone),
					    SCMP_SYS(unshare),	 SCMP_SYS(mount),    SCMP_SYS(pivot_root),
					    SCMP_SYS(setresuid), SCMP_SYS(capset),   SCMP_SYS(socket),
					    SCMP_SYS(ioctl),	 SCMP_SYS(openat),   SCMP_SYS(mmap)};
	for (size_t i = 0; i < sizeof(only_children) / sizeof(only_children[0]); i++) {
		if (has_syscall(l, only_children[i]))
			fprintf(stderr, "launcher allows syscall %d\n", only_children[i]);
		CHECK(!has_syscall(l, only_children[i]));
	}
	/* an unfiltered policy is never loaded as a filter */
	CHECK_EQ(sandbox_seccomp(sp), -EINVAL);
}

TEST(helpers_keep_only_their_own_caps)
{
	CHECK_EQ(policy("netd")->ncaps, 1);
	CHECK_EQ(policy("netd")->caps[0], CAP_NET_ADMIN);
	CHECK_EQ(policy("stored")->ncaps, 0);
	CHECK_EQ(policy("uffdd")->ncaps, 0);
	CHECK_EQ(policy("supervisor")->ncaps, 0);
	for (size_t i = 0; i < NALL; i++)
		CHECK_EQ(policy(all[i])->unshare_flags, 0); /* see docs/policy.md: namespaces */
}

static void *thread_fn(void *arg)
{
	return arg;
}

static int do_thread(void)
{
	static int token;
	pthread_t t;
	void *ret = NULL;
	return pthread_create(&t, NULL, thread_fn, &token) == 0 && pthread_join(t, &ret) == 0 && ret == &token ? 0 : 1;
}

/* QEMU's policy: threads yes, namespaces, mounts, tracing and network sockets no. */
TEST(vmm_qemu_threads_but_no_namespaces_mounts_or_network)
{
	const struct sandbox_policy *p = policy("vmm_qemu");
	CHECK(p->ncaps == 0);
	CHECK_RUNS(p, NULL, do_thread);
	CHECK_KILLED(p, NULL, do_clone_newnet);
	CHECK_KILLED(p, NULL, do_unshare_net);
	CHECK_KILLED(p, NULL, do_mount);
	CHECK_KILLED(p, NULL, do_ptrace);
	CHECK_KILLED(p, NULL, do_socket_inet);
	CHECK_KILLED(p, NULL, do_kexec_load);
}
