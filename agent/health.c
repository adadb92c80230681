/* --health-cmd: the agent runs the command in the container (sh -c, the way exec does: no
 * podman start-up, whose own health checks need systemd timers the guest lacks) at start and
 * then every interval. The container is healthy once it succeeds, unhealthy after `retries`
 * failures in a row, starting until either. The host reads it with agent_health. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/util.h"

#define HEALTH_TIMEOUT_MS 30000 /* a check running longer fails (podman's default timeout) */

static struct {
	char *cmd;
	unsigned interval_ms, retries, failures;
	enum { H_NONE, H_STARTING, H_HEALTHY, H_UNHEALTHY } state;
	pid_t pid;
	uint64_t started_ms, next_ms;
} h = {.pid = -1};

void health_configure(const char *cmd, unsigned interval_s, unsigned retries)
{
	free(h.cmd);
	h.cmd = cmd ? strdup(cmd) : NULL;
	h.state = h.cmd ? H_STARTING : H_NONE;
	h.interval_ms = (interval_s ? interval_s : 30) * 1000;
	h.retries = retries ? retries : 3;
	h.failures = 0;
	h.next_ms = 0; /* the first check once the container runs */
}

const char *health_state_name(void)
{
	static const char *const names[] = {NULL, "starting", "healthy", "unhealthy"};
	return names[h.state];
}

static void check_start(uint64_t now)
{
	pid_t pid = fork();
	if (pid < 0) {
		h.next_ms = now + h.interval_ms;
		return;
	}
	if (pid == 0) {
		struct session s;
		memset(&s, 0, sizeof(s));
		char *argv[] = {"/bin/sh", "-c", h.cmd, NULL};
		char *none[] = {NULL};
		s.argv = argv;
		s.env = none;
		char **pargv = container_exec_argv(&s, argv, NULL); /* podman exec fcvm /bin/sh -c CMD */
		sigset_t empty;
		sigemptyset(&empty);
		sigprocmask(SIG_SETMASK, &empty, NULL);
		setsid();
		int nul = open("/dev/null", O_RDWR);
		for (int fd = 0; fd < 3 && nul >= 0; fd++)
			dup2(nul, fd);
		char **envp = default_env(NULL, false);
		if (!pargv || !envp)
			_exit(127);
		if (fastexec_possible(&s))
			fastexec_child(&s, pargv, envp);
		environ = envp;
		execvp(pargv[0], pargv);
		_exit(127);
	}
	h.pid = pid;
	h.started_ms = now;
}

void health_tick(uint64_t now, int *timeout)
{
	if (h.state == H_NONE || ag.cstate != CS_RUNNING)
		return;
	if (h.pid > 0 && now - h.started_ms > HEALTH_TIMEOUT_MS)
		kill(-h.pid, SIGKILL); /* its exit counts as a failure */
	if (h.pid < 0 && now >= h.next_ms)
		check_start(now);
	uint64_t at = h.pid > 0 ? h.started_ms + HEALTH_TIMEOUT_MS : h.next_ms;
	int ms = at > now ? (int)(at - now) : 0;
	if (*timeout < 0 || ms < *timeout)
		*timeout = ms;
}

bool health_reaped(pid_t pid, int status)
{
	if (pid != h.pid || pid <= 0)
		return false;
	h.pid = -1;
	h.next_ms = now_mono_ms() + h.interval_ms;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		h.failures = 0;
		h.state = H_HEALTHY;
	} else if (++h.failures >= h.retries) {
		h.state = H_UNHEALTHY;
	}
	return true;
}
