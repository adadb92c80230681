/* Where is the supervisor? In order:
 *   1. --state-dir DIR / FCVM_STATE_DIR: DIR/fcvm.sock (never started on demand: the caller
 *      chose that instance);
 *   2. FCVM_SOCKET (set by `fcvm supervise -- CMD` for its command);
 *   3. the system instance, /run/fcvm/fcvm.sock, when it answers;
 *   4. this user's own instance (common/paths.c: paths_default_state_dir), started on demand.
 * Every one is trusted only after common/paths.h's checks: its directory (and those above)
 * out of other users' reach before connecting, and the listener (SO_PEERCRED) this user,
 * root or the system supervisor after. Nothing is sent to a socket that fails them: requests
 * carry the caller's open files (images) and stdin. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
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
#include "common/paths.h"
#include "common/util.h"

#define START_TIMEOUT_MS 15000
#define WHY_LEN		 768

const char *cli_default_state_dir(void)
{
	const char *dir = paths_default_state_dir();
	const char *why = paths_default_state_dir_why();
	if (!dir)
		fprintf(stderr,
			"fcvm: no safe place for your own instance (%s); set XDG_RUNTIME_DIR to a directory only "
			"you can write, or use --state-dir DIR\n",
			why);
	else if (*why)
		fprintf(stderr, "fcvm: note: not using %s; your instance is under %s\n", why, dir);
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

static int explain(int err, const char *path, const char *state_dir, const char *why, int *exit_code)
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
		fprintf(stderr, "fcvm: cannot connect to %s: %s\n", path, *why ? why : strerror(-err));
		*exit_code = EXIT_NO_SUPERVISOR;
	}
	return -1;
}

/* A socket that failed a trust check: say what is wrong and what to do; nothing was sent. */
static int refuse(const char *path, const char *why, int *exit_code)
{
	fprintf(stderr, "fcvm: refusing %s: %s; remove it or use --state-dir DIR (a directory only you can write)\n",
		path, why);
	*exit_code = EXIT_DENIED;
	return -1;
}

/* name in dir, connected only if dir passes paths_trusted_socket and the listener passes the
 * SO_PEERCRED check. Returns the fd, or -errno: *refused tells a failed check (why says
 * which) from a socket that is just not there (-ENOENT: no dir or no socket) or not answering. */
static int connect_checked(const char *dir, const char *name, bool *refused, char *why, size_t len)
{
	char sock[PATH_MAX];
	uid_t self = geteuid();
	*refused = false;
	why[0] = '\0';
	int rc = paths_trusted_socket(dir, name, self, sock, sizeof(sock), why, len);
	if (rc == -ENOENT || rc == -ENAMETOOLONG)
		return rc;
	if (rc < 0) {
		*refused = true;
		return rc;
	}
	int fd = connect_path(sock);
	if (fd < 0)
		return fd;
	rc = paths_check_socket_peer(fd, self, paths_system_uid(), why, len);
	if (rc < 0) {
		close(fd);
		*refused = true;
		return rc;
	}
	return fd;
}

/* An instance the caller named (--state-dir, FCVM_SOCKET): never started here. */
static int connect_named(const char *dir, const char *name, const char *hint_dir, int *exit_code)
{
	char shown[PATH_MAX + 256], why[WHY_LEN];
	bool refused;
	snprintf(shown, sizeof(shown), "%s/%s", dir, name);
	int fd = connect_checked(dir, name, &refused, why, sizeof(why));
	if (fd >= 0)
		return fd;
	return refused ? refuse(shown, why, exit_code) : explain(fd, shown, hint_dir, why, exit_code);
}

static int connect_env_socket(const char *sock, int *exit_code)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(sock, '/');
	if (!slash)
		return connect_named(".", sock, "DIR", exit_code);
	if ((size_t)(slash - sock) >= sizeof(dir))
		return explain(-ENAMETOOLONG, sock, "DIR", "", exit_code);
	memcpy(dir, sock, (size_t)(slash - sock));
	dir[slash - sock] = '\0';
	return connect_named(slash == sock ? "/" : dir, slash + 1, "DIR", exit_code);
}

/* The system instance when it answers: its fd; -1 after a refusal (*exit_code set); -2 when
 * it is not there or not open to this user (the caller goes on to its own). */
static int connect_system(int *exit_code)
{
	char why[WHY_LEN];
	bool refused;
	int fd = connect_checked(FCVM_SYSTEM_STATE_DIR, FCVM_SOCKET_NAME, &refused, why, sizeof(why));
	if (fd >= 0)
		return fd;
	if (refused)
		return refuse(FCVM_SYSTEM_STATE_DIR "/" FCVM_SOCKET_NAME, why, exit_code);
	if (fd == -EACCES && geteuid() != 0)
		fprintf(stderr, "fcvm: note: the system instance at %s is not open to you; using your own\n",
			FCVM_SYSTEM_STATE_DIR);
	return -2;
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

/* Make the caller's own state dir (0700) and check it again: whatever raced us into its place is refused, not used. */
static int prepare_own_dir(const char *dir, const char *shown, int *exit_code)
{
	char sock[PATH_MAX], why[WHY_LEN];
	int rc = mkdir_p(dir, 0700);
	if (rc < 0) {
		fprintf(stderr, "fcvm: cannot create %s: %s\n", dir, strerror(-rc));
		*exit_code = EXIT_NO_SUPERVISOR;
		return -1;
	}
	rc = paths_trusted_socket(dir, FCVM_SOCKET_NAME, geteuid(), sock, sizeof(sock), why, sizeof(why));
	return rc < 0 ? refuse(shown, why, exit_code) : 0;
}

/* This user's own instance, started on demand. */
static int connect_own(int *exit_code)
{
	char shown[PATH_MAX], why[WHY_LEN];
	bool refused;
	const char *dir = cli_default_state_dir();
	if (!dir) {
		*exit_code = EXIT_DENIED;
		return -1;
	}
	snprintf(shown, sizeof(shown), "%s/%s", dir, FCVM_SOCKET_NAME);
	int fd = connect_checked(dir, FCVM_SOCKET_NAME, &refused, why, sizeof(why));
	if (fd >= 0)
		return fd;
	if (refused)
		return refuse(shown, why, exit_code);
	if (prepare_own_dir(dir, shown, exit_code) < 0)
		return -1;
	int rc = start_supervisor(dir);
	if (rc < 0) {
		fprintf(stderr, "fcvm: cannot start a supervisor: %s\n", strerror(-rc));
		*exit_code = EXIT_NO_SUPERVISOR;
		return -1;
	}
	uint64_t deadline = now_mono_ms() + START_TIMEOUT_MS;
	while (now_mono_ms() < deadline) {
		fd = connect_checked(dir, FCVM_SOCKET_NAME, &refused, why, sizeof(why));
		if (fd >= 0)
			return fd;
		if (refused)
			return refuse(shown, why, exit_code);
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "fcvm: started a supervisor at %s but it did not answer; see %s/%s\n", dir, dir, FCVM_LOG_NAME);
	*exit_code = EXIT_NO_SUPERVISOR;
	return -1;
}

int cli_connect(const struct cli_opts *o, int *exit_code)
{
	const char *env_sock = getenv(FCVM_ENV_SOCKET);
	*exit_code = EXIT_OK;
	if (o->state_dir)
		return connect_named(o->state_dir, FCVM_SOCKET_NAME, o->state_dir, exit_code);
	if (env_sock && *env_sock)
		return connect_env_socket(env_sock, exit_code);
	int fd = connect_system(exit_code);
	return fd != -2 ? fd : connect_own(exit_code);
}
