/* fcvm-agent: PID 1 of the guest, or (with --channel-fd / --listen) a host-side test double
 * that skips every boot step. One poll() loop: the channel, each session's pipes, SIGCHLD. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/net.h"
#include "common/util.h"

struct agent ag = {.sigfd = -1, .podman = "podman", .cidfile = "/run/fcvm-container.id"};

static void vlog(const char *fmt, va_list ap)
{
	char buf[1024];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	/* fd 2 is /dev/console in the guest (boot_init makes sure of it) */
	if (write(2, "fcvm-agent: ", 12) < 0 || write(2, buf, (size_t)n) < 0 || write(2, "\n", 1) < 0)
		return;
}

/* Debug log: only with fcvm.debug=1 in the guest; always in test mode with FCVM_AGENT_DEBUG. */
void alog(const char *fmt, ...)
{
	va_list ap;
	if (!ag.debug)
		return;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

/* Errors: always printed. */
void aerr(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

uint64_t boottime_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Test mode only: leave no process behind. */
void agent_exit(int code)
{
	sessions_kill(SIGKILL);
	container_kill(SIGKILL);
	exit(code);
}

static void reap(void)
{
	struct signalfd_siginfo si;
	bool sigio = false;
	int status;
	pid_t pid;

	while (read(ag.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (si.ssi_signo == SIGIO)
			sigio = true;
	if (sigio)
		host_sigio();
	/* PID 1 inherits every orphan: reap them all, ours or not. */
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (container_reaped(pid, status) || health_reaped(pid, status))
			continue;
		session_reaped(pid, status);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: fcvm-agent                      (as PID 1 of the guest)\n"
			"       fcvm-agent --channel-fd N [--exit-on-eof] [--podman PATH] [--image PATH]\n"
			"       fcvm-agent --listen PATH [--podman PATH] [--image PATH]\n"
			"  with --net-host: the container shares the network (as with a guest NIC)\n"
			"       fcvm-agent --net-config SPEC [--net-if NAME] [--net-etc DIR]\n"
			"  configures lo and NAME (default: found by SPEC's MAC) as fcvm.net=SPEC would, exits\n");
	exit(2);
}

/* --net-config: the guest's interface configuration alone, for tests on the host */
static struct {
	const char *spec, *ifname, *etc_dir;
} net_only;

static void parse_args(int argc, char **argv, int *host_fd, const char **listen_path)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;
		if (strcmp(a, "--exit-on-eof") == 0) {
			ag.exit_on_eof = true;
			continue;
		}
		if (strcmp(a, "--debug") == 0) {
			ag.debug = true;
			continue;
		}
		if (strcmp(a, "--net-host") == 0) {
			ag.net_on = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (strcmp(a, "--channel-fd") == 0 && parse_uint(v, INT32_MAX, &n))
			*host_fd = (int)n;
		else if (strcmp(a, "--listen") == 0)
			*listen_path = v;
		else if (strcmp(a, "--podman") == 0)
			ag.podman = v;
		else if (strcmp(a, "--net-config") == 0)
			net_only.spec = v;
		else if (strcmp(a, "--net-if") == 0)
			net_only.ifname = v;
		else if (strcmp(a, "--net-etc") == 0)
			net_only.etc_dir = v;
		else if (strcmp(a, "--cidfile") == 0)
			ag.cidfile = v;
		else if (strcmp(a, "--image") == 0 && strlen(v) < sizeof(ag.image))
			snprintf(ag.image, sizeof(ag.image), "%s", v);
		else
			usage();
	}
}

/* Make sure fds 0..2 exist, so no fd we open later lands there (children get theirs by dup2). */
static void fix_stdio(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n >= 0 && n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

static void setup_signals(void)
{
	sigset_t set;

	/* Writes to a closed socket or pipe must be errors, never a fatal signal. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGIO);
	sigprocmask(SIG_BLOCK, &set, NULL);
	ag.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (ag.sigfd < 0)
		aerr("signalfd: %s", strerror(errno));
}

static void loop(void)
{
	struct pollfd *p = NULL;
	struct session **who = NULL;
	size_t cap = 0, whocap = 0;

	for (;;) {
		uint64_t now = now_mono_ms();
		int timeout = -1;
		size_t n = 0;

		if (cap < 8) {
			cap = 8;
			p = realloc(p, cap * sizeof(*p));
			if (!p)
				abort();
		}
		p[n++] = (struct pollfd){.fd = ag.sigfd, .events = POLLIN};
		int nch = host_pollfds(&p[n], now, &timeout);
		size_t host_at = n;
		n += (size_t)nch;
		int ncont = container_pollfd(&p[n]);
		size_t cont_at = n;
		n += (size_t)ncont;
		int nhold = hold_pollfds(&p[n], now, &timeout);
		size_t hold_at = n;
		n += (size_t)nhold;
		size_t sess_at = n;
		n = (size_t)sessions_pollfds(&p, &cap, n, &who, &whocap);
		health_tick(now, &timeout);

		int r = poll(p, n, timeout);
		if (r < 0 && errno != EINTR) {
			aerr("poll: %s", strerror(errno));
			continue;
		}
		if (r > 0) {
			/* Sessions first: the channel's requests may release them (freed in the sweep). */
			for (size_t i = sess_at; i < n; i++)
				if (p[i].revents)
					session_events(who[i - sess_at], &p[i]);
			if (ncont && p[cont_at].revents)
				container_events(&p[cont_at]);
			hold_events(&p[hold_at], nhold, now_mono_ms());
			if (p[0].revents)
				reap();
			host_events(&p[host_at], nch);
		} else {
			host_events(NULL, 0); /* timers */
			hold_events(NULL, 0, now_mono_ms());
		}
		reap(); /* cheap; catches a child whose SIGCHLD raced a session's EOF */
		sessions_pump();
		host_flush();
		sessions_sweep();
	}
}

int main(int argc, char **argv)
{
	int host_fd = -1;
	const char *listen_path = NULL;

	if (argc == 3 && strcmp(argv[1], "--hold") == 0) /* podman's hook (hold.c), not an agent */
		return hold_client(argv[2]);
	parse_args(argc, argv, &host_fd, &listen_path);
	if (getenv("FCVM_AGENT_DEBUG"))
		ag.debug = true;
	if (net_only.spec)
		return net_test(net_only.spec, net_only.ifname, net_only.etc_dir);
	if (host_fd < 0 && !listen_path) {
		if (getpid() != 1)
			usage();
		ag.boot = true;
		boot_init(); /* never fails: problems go to the console and we serve anyway */
	} else {
		fix_stdio();
	}
	setup_signals();
	if (host_fd >= 0) {
		if (host_open_fd(host_fd) < 0)
			agent_exit(1);
	} else if (listen_path) {
		if (host_listen(listen_path) < 0)
			agent_exit(1);
	} else {
		host_open_virtio(ag.ch.port[0] ? ag.ch.port : DEFAULT_PORT);
	}
	ag.ready_ms = boottime_ms();
	alog("ready after %llu ms", (unsigned long long)ag.ready_ms);
	loop();
	return 0;
}
