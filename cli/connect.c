/* Where is the supervisor? In order:
 *   1. --state-dir DIR / FCVM_STATE_DIR: DIR/fcvm.sock (never started on demand: the caller
 *      chose that instance);
 *   2. FCVM_SOCKET (set by `fcvm supervise -- CMD` for its command);
 *   3. the system instance, /run/fcvm/fcvm.sock, when it answers;
 *   4. this user's own instance, started on demand. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/config.h"
#include "common/util.h"

#define START_TIMEOUT_MS 15000

const char *cli_default_state_dir(void)
{
	static char dir[512];
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (geteuid() == 0)
		return FCVM_SYSTEM_STATE_DIR;
	if (xdg && xdg[0] == '/')
		snprintf(dir, sizeof(dir), "%s/fcvm", xdg);
	else
		snprintf(dir, sizeof(dir), "/tmp/fcvm-%u", (unsigned)getuid());
	return dir;
}

static int connect_path(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static int explain(int err, const char *path, const char *state_dir, int *exit_code)
{
	if (err == -EACCES || err == -EPERM) {
		fprintf(stderr,
			"fcvm: permission denied connecting to %s: that instance belongs to another user; "
			"use your own ('fcvm supervise --state-dir DIR') or ask its owner\n",
			path);
		*exit_code = EXIT_DENIED;
	} else if (err == -ENOENT || err == -ECONNREFUSED) {
		fprintf(stderr,
			"fcvm: no supervisor is running at %s; start one with 'fcvm supervise --state-dir %s'\n", path,
			state_dir);
		*exit_code = EXIT_NO_SUPERVISOR;
	} else {
		fprintf(stderr, "fcvm: cannot connect to %s: %s\n", path, strerror(-err));
		*exit_code = EXIT_NO_SUPERVISOR;
	}
	return -1;
}

/* Start `fcvm supervise --state-dir DIR` detached from this terminal and session. */
static int start_supervisor(const char *dir)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -errno;
	self[n] = '\0';
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (setsid() < 0 || fork() != 0)
			_exit(0);
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		execl(self, "fcvm", "supervise", "--state-dir", dir, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	return 0;
}

int cli_connect(const struct cli_opts *o, int *exit_code)
{
	char path[PATH_MAX];
	const char *env_sock = getenv(FCVM_ENV_SOCKET);
	int fd;

	if (o->state_dir) {
		snprintf(path, sizeof(path), "%s/%s", o->state_dir, FCVM_SOCKET_NAME);
		fd = connect_path(path);
		return fd >= 0 ? fd : explain(fd, path, o->state_dir, exit_code);
	}
	if (env_sock && *env_sock) {
		fd = connect_path(env_sock);
		return fd >= 0 ? fd : explain(fd, env_sock, "DIR", exit_code);
	}
	fd = connect_path(FCVM_SYSTEM_STATE_DIR "/" FCVM_SOCKET_NAME);
	if (fd >= 0)
		return fd;
	if (fd == -EACCES && geteuid() != 0)
		fprintf(stderr, "fcvm: note: the system instance at %s is not open to you; using your own\n",
			FCVM_SYSTEM_STATE_DIR);

	const char *dir = cli_default_state_dir();
	snprintf(path, sizeof(path), "%s/%s", dir, FCVM_SOCKET_NAME);
	fd = connect_path(path);
	if (fd >= 0)
		return fd;
	int rc = start_supervisor(dir);
	if (rc < 0) {
		fprintf(stderr, "fcvm: cannot start a supervisor: %s\n", strerror(-rc));
		*exit_code = EXIT_NO_SUPERVISOR;
		return -1;
	}
	uint64_t deadline = now_mono_ms() + START_TIMEOUT_MS;
	while (now_mono_ms() < deadline) {
		fd = connect_path(path);
		if (fd >= 0)
			return fd;
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "fcvm: started a supervisor at %s but it did not answer; see %s/%s\n", dir, dir, FCVM_LOG_NAME);
	*exit_code = EXIT_NO_SUPERVISOR;
	return -1;
}
