/* `fcvm supervise [--state-dir DIR] [-- CMD...]`: set up an instance and run it.
 * Everything that needs the starting user's rights (state dir, socket, log, helper programs)
 * is acquired here, before any process drops them. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/assets.h"
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/chan.h"
#include "supervisor/launcher.h"
#include "supervisor/supervisor.h"

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fcvm supervise: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

/* Where images and disks live: --data-dir, else DIR/data for a private instance, else the
 * system's or the user's data directory. */
static int choose_data_dir(struct instance *in, const char *data_dir, bool private_instance)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	int n;
	if (data_dir)
		n = snprintf(in->data_dir, sizeof(in->data_dir), "%s", data_dir);
	else if (private_instance)
		n = snprintf(in->data_dir, sizeof(in->data_dir), "%s/%s", in->state_dir, FCVM_DATA_DIR_NAME);
	else if (in->system_mode)
		n = snprintf(in->data_dir, sizeof(in->data_dir), "%s", FCVM_SYSTEM_DATA_DIR);
	else if (xdg && xdg[0] == '/')
		n = snprintf(in->data_dir, sizeof(in->data_dir), "%s/fcvm", xdg);
	else if (home && home[0] == '/')
		n = snprintf(in->data_dir, sizeof(in->data_dir), "%s/.local/share/fcvm", home);
	else
		n = snprintf(in->data_dir, sizeof(in->data_dir), "%s/%s", in->state_dir, FCVM_DATA_DIR_NAME);
	if (n < 0 || (size_t)n >= sizeof(in->data_dir) || in->data_dir[0] != '/')
		return fail("the data directory must be an absolute path (got '%s')", in->data_dir);
	return 0;
}

/* The data directory belongs to the helpers' user: only stored works in it. */
static int open_data_dir(const struct instance *in)
{
	int rc = mkdir_p(in->data_dir, 0700);
	if (rc < 0) {
		fail("cannot create the data directory %s: %s", in->data_dir, strerror(-rc));
		return rc;
	}
	int fd = open(in->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = -errno;
		fail("cannot open the data directory %s: %s", in->data_dir, strerror(-rc));
		return rc;
	}
	if (in->system_mode && fchown(fd, in->helper_uid, in->helper_gid) < 0) {
		fail("cannot give %s to %s: %s", in->data_dir, FCVM_HELPER_USER, strerror(errno));
		close(fd);
		return -EPERM;
	}
	return fd;
}

static int setup_instance(struct instance *in, const char *state_dir)
{
	in->owner_uid = getuid();
	in->system_mode = geteuid() == 0;
	in->mode_name = in->system_mode ? "system" : "rootless";
	if (in->system_mode) {
		if (lookup_user(FCVM_SUPERVISOR_USER, &in->sup_uid, &in->sup_gid) < 0 ||
		    lookup_user(FCVM_HELPER_USER, &in->helper_uid, &in->helper_gid) < 0 ||
		    lookup_user(FCVM_VMM_USER, &in->vmm_uid, &in->vmm_gid) < 0)
			return fail("system mode needs the users '%s', '%s' and '%s'; create them with "
				    "'sudo scripts/create-users' (or 'sudo make install')",
				    FCVM_SUPERVISOR_USER, FCVM_HELPER_USER, FCVM_VMM_USER);
	} else {
		in->sup_uid = in->helper_uid = in->vmm_uid = getuid();
		in->sup_gid = in->helper_gid = in->vmm_gid = getgid();
	}
	if (!state_dir) {
		in->multi_user = in->system_mode;
		state_dir = cli_default_state_dir();
	}
	if (!state_dir || state_dir[0] != '/')
		return fail("the state directory must be an absolute path (got '%s')", state_dir ? state_dir : "");
	if (snprintf(in->state_dir, sizeof(in->state_dir), "%s", state_dir) >= (int)sizeof(in->state_dir) ||
	    snprintf(in->socket_path, sizeof(in->socket_path), "%s/%s", state_dir, FCVM_SOCKET_NAME) >=
		(int)sizeof(((struct sockaddr_un *)0)->sun_path))
		return fail("state directory path too long: %s", state_dir);
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *c = in->state_dir; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	snprintf(in->tag, sizeof(in->tag), "%08x", h);
	return 0;
}

/* The control socket: anyone may connect; the supervisor checks each peer's SO_PEERCRED. */
static int bind_socket(const struct instance *in)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, in->socket_path, strlen(in->socket_path) + 1); /* length checked at setup */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(in->socket_path); /* stale: we hold the instance lock */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(in->socket_path, 0666) < 0 ||
	    listen(fd, 128) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* Helper programs live beside the fcvm binary (build tree) or in FCVM_LIBEXECDIR. */
static int open_helpers(int exe_fd[HELPER__COUNT])
{
	char self[PATH_MAX], dir[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -errno;
	self[n] = '\0';
	snprintf(dir, sizeof(dir), "%s", dirname(self));
	for (int i = 0; i < HELPER__COUNT; i++) {
		snprintf(path, sizeof(path), "%s/fcvm-%s", dir, helper_name((enum helper_id)i));
		exe_fd[i] = open(path, O_PATH | O_CLOEXEC);
		if (exe_fd[i] < 0) {
			snprintf(path, sizeof(path), "%s/fcvm-%s", FCVM_LIBEXECDIR, helper_name((enum helper_id)i));
			exe_fd[i] = open(path, O_PATH | O_CLOEXEC);
		}
		if (exe_fd[i] < 0) {
			fail("helper program fcvm-%s not found beside %s nor in %s", helper_name((enum helper_id)i),
			     self, FCVM_LIBEXECDIR);
			return -ENOENT;
		}
	}
	return 0;
}

/* The command child: waits until the supervisor is ready, then execs. */
static __attribute__((noreturn)) void run_command(const struct instance *in, int go, char **cmd)
{
	char c;
	ssize_t n;
	while ((n = read(go, &c, 1)) < 0 && errno == EINTR)
		;
	if (n != 1) {
		fprintf(stderr, "fcvm supervise: the supervisor did not start; see %s/%s\n", in->state_dir,
			FCVM_LOG_NAME);
		_exit(125);
	}
	close(go);
	setenv(FCVM_ENV_SOCKET, in->socket_path, 1);
	setenv(FCVM_ENV_STATE_DIR, in->state_dir, 1);
	execvp(cmd[0], cmd);
	fprintf(stderr, "fcvm supervise: %s: %s\n", cmd[0], strerror(errno));
	_exit(127);
}

int cmd_supervise(int argc, char **argv, const char *state_dir)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 's'},
	    {"data-dir", required_argument, NULL, 'd'},
	    {"assets", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static struct instance in;
	const char *data_dir = NULL, *assets = NULL;
	bool private_instance = state_dir != NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == 's') {
			state_dir = optarg;
			private_instance = true;
		} else if (c == 'd') {
			data_dir = optarg;
		} else if (c == 'a') {
			assets = optarg;
		} else {
			fprintf(c == 'h' ? stdout : stderr,
				"usage: fcvm supervise [--state-dir DIR] [--data-dir DIR] [--assets DIR] [-- CMD "
				"[ARGS...]]\n"
				"  Runs a supervisor and its helpers. With CMD, runs CMD once the supervisor is\n"
				"  ready (FCVM_SOCKET and FCVM_STATE_DIR set), then stops everything and exits\n"
				"  with CMD's status.\n");
			return c == 'h' ? 0 : 2;
		}
	}
	char **cmd = optind < argc ? &argv[optind] : NULL;
	if (setup_instance(&in, state_dir) || choose_data_dir(&in, data_dir, private_instance))
		return 1;
	if (assets ? snprintf(in.assets_dir, sizeof(in.assets_dir), "%s", assets) >= (int)sizeof(in.assets_dir)
		   : assets_dir_default(in.assets_dir, sizeof(in.assets_dir)) < 0)
		return fail("cannot tell where the guest assets are (set --assets DIR or FCVM_ASSETS)");
	/* a user without assets of their own uses the host's (built once by `sudo fcvm setup`) */
	char manifest[PATH_MAX + 32];
	snprintf(manifest, sizeof(manifest), "%s/%s", in.assets_dir, FCVM_ASSETS_MANIFEST);
	if (!assets && !getenv(FCVM_ENV_ASSETS) && access(manifest, R_OK) != 0)
		snprintf(in.assets_dir, sizeof(in.assets_dir), "%s", FCVM_SYSTEM_ASSETS_DIR);

	int rc = mkdir_p(in.state_dir, in.system_mode ? 0755 : 0700);
	if (rc < 0)
		return fail("cannot create %s: %s", in.state_dir, strerror(-rc));
	int dirfd = open(in.state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int lock = openat(dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (dirfd < 0 || lock < 0)
		return fail("cannot open %s: %s", in.state_dir, strerror(errno));
	if (flock(lock, LOCK_EX | LOCK_NB) < 0)
		return fail("an fcvm supervisor is already running at %s (stop it with 'fcvm --state-dir %s "
			    "shutdown')",
			    in.state_dir, in.state_dir);
	/* VMs' own directories (sockets, console, state): the supervisor's */
	if ((mkdirat(dirfd, FCVM_VMS_DIR_NAME, 0700) < 0 && errno != EEXIST) ||
	    fchownat(dirfd, FCVM_VMS_DIR_NAME, in.sup_uid, in.sup_gid, 0) < 0)
		return fail("cannot create %s/%s: %s", in.state_dir, FCVM_VMS_DIR_NAME, strerror(errno));
	int logfd = openat(dirfd, FCVM_LOG_NAME, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (logfd < 0 || devnull < 0)
		return fail("cannot open the log %s/%s: %s", in.state_dir, FCVM_LOG_NAME, strerror(errno));
	int exe_fd[HELPER__COUNT];
	if (open_helpers(exe_fd) < 0)
		return 1;
	int data_fd = open_data_dir(&in);
	if (data_fd < 0)
		return 1;
	int listen_fd = bind_socket(&in);
	if (listen_fd < 0)
		return fail("cannot listen on %s: %s", in.socket_path, strerror(-listen_fd));
	int lsv[2];
	if ((rc = chan_pair(lsv)) < 0)
		return fail("socketpair: %s", strerror(-rc));
	int user_err = fcntl(2, F_DUPFD_CLOEXEC, 3);
	fflush(NULL);

	pid_t sup = fork();
	if (sup < 0)
		return fail("fork: %s", strerror(errno));
	if (sup == 0) {
		dup2(devnull, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		close(lsv[0]);
		_exit(supervisor_main(&in, listen_fd, lsv[1]));
	}
	close(lsv[1]);

	struct launcher_setup ls = {
	    .inst = &in,
	    .chan = lsv[0],
	    .devnull = devnull,
	    .data_fd = data_fd,
	    .state_dirfd = dirfd,
	    .user_err = user_err,
	    .lock_fd = lock,
	    .sup_pid = sup,
	    .cmd_go = -1,
	    .vmm_exe_fd = vmm_open_binary(),
	    .pasta_exe_fd = pasta_open_binary(),
	    .listen_fd = listen_fd,
	};
	memcpy(ls.exe_fd, exe_fd, sizeof(exe_fd));
	if (cmd) {
		int go[2];
		if (pipe2(go, O_CLOEXEC) < 0)
			return fail("pipe: %s", strerror(errno));
		ls.cmd_pid = fork();
		if (ls.cmd_pid < 0)
			return fail("fork: %s", strerror(errno));
		if (ls.cmd_pid == 0) {
			close(go[1]);
			run_command(&in, go[0], cmd);
		}
		close(go[0]);
		ls.cmd_go = go[1];
	}
	dup2(logfd, 2);
	close(logfd);
	return launcher_main(&ls); /* holds the instance lock until it returns */
}
