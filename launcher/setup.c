/* `fcvm-launcher [--state-dir DIR] [-- CMD...]` (what `fcvm supervise` execs): set up an
 * instance and run it. Everything that needs the starting user's rights (state dir, socket,
 * log, the programs) is acquired here; then the command (if any) is forked as the starting
 * user, the launcher becomes its own user (system mode) keeping only the capabilities it
 * hands on, forks the spawner, and enters its own sandbox (launcher.c). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/paths.h"
#include "common/assets.h"
#include "common/config.h"
#include "common/log.h"
#include "common/quotas.h"
#include "common/util.h"
#include "proto/chan.h"
#include "launcher/launcher.h"
#include "policy/sandbox.h"

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
	else if (in->multi_user)
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
	if (in->system_mode && fchown(fd, in->helper_uid[HELPER_STORED], in->helper_gid[HELPER_STORED]) < 0) {
		fail("cannot give %s to %s: %s", in->data_dir, FCVM_STORED_USER, strerror(errno));
		close(fd);
		return -EPERM;
	}
	return fd;
}

static int setup_instance(struct instance *in, const char *state_dir, bool system_instance)
{
	in->owner_uid = getuid();
	in->system_mode = geteuid() == 0;
	in->mode_name = in->system_mode ? "system" : "rootless";
	if (in->system_mode) {
		static const char *const helper_users[HELPER__COUNT] = {[HELPER_NETD] = FCVM_NETD_USER,
									[HELPER_STORED] = FCVM_STORED_USER,
									[HELPER_UFFDD] = FCVM_UFFDD_USER};
		int rc = lookup_user(FCVM_SUPERVISOR_USER, &in->sup_uid, &in->sup_gid) |
			 lookup_user(FCVM_VMM_USER, &in->vmm_uid, &in->vmm_gid);
		for (int i = 0; i < HELPER__COUNT; i++)
			rc |= lookup_user(helper_users[i], &in->helper_uid[i], &in->helper_gid[i]);
		if (rc < 0)
			return fail("system mode needs the users %s, %s, %s, %s, %s and %s; create them with "
				    "'sudo scripts/create-users' (or 'sudo make install')",
				    FCVM_LAUNCHER_USER, FCVM_SUPERVISOR_USER, FCVM_NETD_USER, FCVM_STORED_USER,
				    FCVM_UFFDD_USER, FCVM_VMM_USER);
	} else {
		in->sup_uid = in->vmm_uid = getuid();
		in->sup_gid = in->vmm_gid = getgid();
		for (int i = 0; i < HELPER__COUNT; i++) {
			in->helper_uid[i] = getuid();
			in->helper_gid[i] = getgid();
		}
	}
	/* the system instance (--system: the shipped unit) serves every user of the fcvm-users
	 * group, at /run/fcvm; anybody's own, root's too, is private, elsewhere */
	if (system_instance && !in->system_mode)
		return fail("--system needs root (it runs each process as a user of its own)");
	in->multi_user = system_instance;
	if (!state_dir)
		state_dir = system_instance ? FCVM_SYSTEM_STATE_DIR : paths_default_state_dir();
	if (!state_dir)
		return fail("no safe place for this user's instance: %s; pass --state-dir DIR",
			    paths_default_state_dir_why());
	if (state_dir[0] != '/')
		return fail("the state directory must be an absolute path (got '%s')", state_dir);
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

/* The control socket: the system instance's is for the fcvm-users group (and root); a
 * private one's is open, in its owner's directory, so that the supervisor refuses (and
 * audits) other users by their SO_PEERCRED, as it checks every peer's either way. */
static int bind_socket(const struct instance *in)
{
	gid_t users = 0;
	if (in->multi_user && lookup_group(FCVM_USERS_GROUP, &users) < 0) {
		fail("the system instance needs the group %s; create it with 'sudo scripts/create-users'",
		     FCVM_USERS_GROUP);
		return -ENOENT;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, in->socket_path, strlen(in->socket_path) + 1); /* length checked at setup */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(in->socket_path); /* stale: we hold the instance lock */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (in->multi_user && chown(in->socket_path, 0, users) < 0) ||
	    chmod(in->socket_path, in->multi_user ? 0660 : 0666) < 0 || listen(fd, 128) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* Our programs live beside this one (build tree) or in FCVM_LIBEXECDIR. */
static int open_ours(const char *name)
{
	char self[PATH_MAX], dir[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -errno;
	self[n] = '\0';
	snprintf(dir, sizeof(dir), "%s", dirname(self));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		snprintf(path, sizeof(path), "%s/%s", FCVM_LIBEXECDIR, name);
		fd = open(path, O_PATH | O_CLOEXEC);
	}
	if (fd < 0)
		fail("%s not found beside %s nor in %s", name, self, FCVM_LIBEXECDIR);
	return fd;
}

static int open_first(const char *const *paths, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int fd = open(paths[i], O_PATH | O_CLOEXEC);
		if (fd >= 0)
			return fd;
	}
	return -ENOENT;
}

/* Every program the spawner may start, opened once, never by a path from a request. */
static int open_programs(int exe_fd[PROG__COUNT])
{
	static const char *const ours[] = {[PROG_SUPERVISOR] = "fcvm-supervisor",
					   [PROG_NETD] = "fcvm-netd",
					   [PROG_STORED] = "fcvm-stored",
					   [PROG_UFFDD] = "fcvm-uffdd"};
	static const char *const qemu[] = {"/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64",
					   "/usr/libexec/qemu-system-x86_64"};
	/* Debian's pasta is passt, which re-executes itself as passt.avx2 by path where the CPU
	 * has AVX2: that build is taken directly (it acts as pasta by its argv[0]). */
	static const char *const pasta[] = {"/usr/bin/pasta", "/usr/local/bin/pasta", "/usr/sbin/pasta"};
	static const char *const pasta_avx2[] = {"/usr/bin/passt.avx2"};
	for (int i = 0; i <= PROG_UFFDD; i++)
		if ((exe_fd[i] = open_ours(ours[i])) < 0)
			return -ENOENT;
	const char *env = getenv("FCVM_QEMU");
	exe_fd[PROG_QEMU] = env && env[0] == '/' ? open(env, O_PATH | O_CLOEXEC) : open_first(qemu, ARRAY_LEN(qemu));
	exe_fd[PROG_PASTA] = __builtin_cpu_supports("avx2") ? open_first(pasta_avx2, 1) : -1;
	if (exe_fd[PROG_PASTA] < 0)
		exe_fd[PROG_PASTA] = open_first(pasta, ARRAY_LEN(pasta));
	return 0;
}

/* System mode: VM slot i runs as the i-th uid (and gid) of fcvm-vmm's subordinate range. */
static unsigned subid_range(const char *file, const char *user, unsigned long *base)
{
	char line[256];
	FILE *f = fopen(file, "re");
	unsigned long count = 0;
	size_t ulen = strlen(user);
	while (f && fgets(line, sizeof(line), f)) {
		char *end;
		if (strncmp(line, user, ulen) != 0 || line[ulen] != ':')
			continue;
		*base = strtoul(line + ulen + 1, &end, 10);
		if (*end == ':')
			count = strtoul(end + 1, NULL, 10);
		break;
	}
	if (f)
		fclose(f);
	return *base > 0 && *base + count < UINT32_MAX ? (unsigned)(count < MAX_VMMS ? count : MAX_VMMS) : 0;
}

static void vmm_range(struct launcher_setup *ls)
{
	unsigned long ubase = 0, gbase = 0;
	unsigned nu = subid_range(FCVM_SUBUID_FILE, FCVM_VMM_USER, &ubase);
	unsigned ng = subid_range(FCVM_SUBGID_FILE, FCVM_VMM_USER, &gbase);
	ls->vmm_uids = nu < ng ? nu : ng;
	ls->vmm_uid_base = (uid_t)ubase;
	ls->vmm_gid_base = (gid_t)gbase;
	if (!ls->vmm_uids)
		log_warn("no subordinate uid range for %s in %s and %s: every VMM runs as %s (they are "
			 "still kept apart by their PID namespaces); scripts/create-users registers one",
			 FCVM_VMM_USER, FCVM_SUBUID_FILE, FCVM_SUBGID_FILE, FCVM_VMM_USER);
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

/* System mode: the one step that needs uid 0 after the launcher has left it is removing the
 * control socket from the root-owned state directory when the instance ends. The process
 * `fcvm supervise` started as stays root for that alone: it serves no one, holds nothing
 * but the state directory, passes SIGINT/SIGTERM/SIGHUP on to the launcher, waits for it,
 * removes the socket and exits with its status. */
static int root_waits(pid_t launcher, int dirfd, const struct vmm_cgroups *cg)
{
	sigset_t set;
	siginfo_t si;
	int st = 0;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int keep[] = {dirfd};
	sandbox_close_fds(keep, 1);
	for (;;) {
		if (waitpid(launcher, &st, WNOHANG) == launcher)
			break;
		if (sigwaitinfo(&set, &si) > 0 && si.si_signo != SIGCHLD)
			kill(launcher, si.si_signo);
	}
	unlinkat(dirfd, FCVM_SOCKET_NAME, 0);
	vmm_cgroup_release(cg);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int launcher_setup_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"state-dir", required_argument, NULL, 's'},
	    {"data-dir", required_argument, NULL, 'd'},
	    {"assets", required_argument, NULL, 'a'},
	    {"quotas", required_argument, NULL, 'q'},
	    {"system", no_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static struct instance in;
	const char *data_dir = NULL, *assets = NULL, *state_dir = NULL, *const default_quotas = FCVM_QUOTAS_FILE,
		   *quotas = default_quotas;
	bool private_instance = false, system_instance = false;
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
		} else if (c == 'q') {
			quotas = optarg;
		} else if (c == 'S') {
			system_instance = true;
		} else {
			fprintf(c == 'h' ? stdout : stderr,
				"usage: fcvm supervise [--system] [--state-dir DIR] [--data-dir DIR] [--assets DIR]\n"
				"                      [--quotas FILE] [-- CMD [ARGS...]]\n"
				"  --system: the system instance (root; at " FCVM_SYSTEM_STATE_DIR
				", for the group " FCVM_USERS_GROUP "),\n"
				"  else a private one (yours; root's too).\n"
				"  Runs a supervisor and its helpers. With CMD, runs CMD once the supervisor is\n"
				"  ready (FCVM_SOCKET and FCVM_STATE_DIR set), then stops everything and exits\n"
				"  with CMD's status.\n");
			return c == 'h' ? 0 : 2;
		}
	}
	char **cmd = optind < argc ? &argv[optind] : NULL;
	if (setup_instance(&in, state_dir, system_instance) ||
	    choose_data_dir(&in, data_dir, private_instance || !system_instance))
		return 1;
	if (assets ? snprintf(in.assets_dir, sizeof(in.assets_dir), "%s", assets) >= (int)sizeof(in.assets_dir)
		   : assets_dir_default(in.assets_dir, sizeof(in.assets_dir)) < 0)
		return fail("cannot tell where the guest assets are (set --assets DIR or FCVM_ASSETS)");
	const char *cache_max = getenv("FCVM_CACHE_MAX_MB");
	if (cache_max && *cache_max) {
		if (!parse_uint(cache_max, UINT64_MAX >> 21, &in.cache_max_mb))
			return fail("FCVM_CACHE_MAX_MB=%s is not a number of MiB", cache_max);
		in.cache_max_set = true;
	}
	/* the quotas the supervisor will enforce: a file it cannot use is refused now, not later
	 * (the default file may be missing: the built-in defaults are its values) */
	static struct quotas q;
	char qerr[512];
	quotas_default(&q);
	if (quotas != default_quotas && !realpath(quotas, in.quotas_path))
		return fail("--quotas %s: %s", quotas, strerror(errno));
	if (quotas == default_quotas)
		snprintf(in.quotas_path, sizeof(in.quotas_path), "%s", quotas);
	if (quotas_load(&q, in.quotas_path, qerr, sizeof(qerr)) < 0)
		return fail("quotas: %s", qerr);
	/* a user without assets of their own uses the host's (built once by `sudo fcvm setup`) */
	char manifest[PATH_MAX + 32];
	snprintf(manifest, sizeof(manifest), "%s/%s", in.assets_dir, FCVM_ASSETS_MANIFEST);
	if (!assets && !getenv(FCVM_ENV_ASSETS) && access(manifest, R_OK) != 0)
		snprintf(in.assets_dir, sizeof(in.assets_dir), "%s", FCVM_SYSTEM_ASSETS_DIR);
	/* the supervisor's empty root shows this directory as it exists at its start: made now
	 * (best effort), so that a `fcvm setup` run later fills what the supervisor sees */
	mkdir_p(in.assets_dir, 0755);

	int rc = mkdir_p(in.state_dir, in.system_mode ? 0755 : 0700);
	if (rc < 0)
		return fail("cannot create %s: %s", in.state_dir, strerror(-rc));
	/* a directory another user can write (or rename away) would let them put their own
	 * socket where our clients look for ours: refused, before anything is made in it */
	char why[512];
	if (paths_check_private_dir(in.state_dir, getuid(), why, sizeof(why)) < 0 ||
	    paths_check_parents(in.state_dir, getuid(), why, sizeof(why)) < 0)
		return fail("refusing the state directory: %s; use a directory only you can write", why);
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
	static struct launcher_setup ls = {.cmd_go = -1};
	if (open_programs(ls.exe_fd) < 0)
		return 1;
	ls.firecracker = access("/usr/bin/firecracker", X_OK) == 0 || access("/usr/local/bin/firecracker", X_OK) == 0;
	int data_fd = open_data_dir(&in);
	if (data_fd < 0)
		return 1;
	int listen_fd = bind_socket(&in);
	if (listen_fd < 0)
		return fail("cannot listen on %s: %s", in.socket_path, strerror(-listen_fd));
	ls.inst = &in;
	ls.devnull = devnull;
	ls.data_fd = data_fd;
	ls.state_dirfd = dirfd;
	ls.user_err = fcntl(2, F_DUPFD_CLOEXEC, 3);
	ls.lock_fd = lock;
	ls.listen_fd = listen_fd;
	ls.vms_fd = openat(dirfd, FCVM_VMS_DIR_NAME, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (ls.vms_fd < 0)
		return fail("cannot open %s/%s: %s", in.state_dir, FCVM_VMS_DIR_NAME, strerror(errno));
	/* the VMs' cgroups: before the fork, as a v2 instance moves itself into a leaf first */
	uid_t launcher_uid = getuid();
	gid_t launcher_gid = getgid();
	if (in.system_mode && (rc = lookup_user(FCVM_LAUNCHER_USER, &launcher_uid, &launcher_gid)) < 0)
		return fail("no user %s (scripts/create-users makes it): %s", FCVM_LAUNCHER_USER, strerror(-rc));
	vmm_cgroup_prepare(&ls.cg, in.tag, launcher_uid, launcher_gid);
	fflush(NULL);
	if (in.system_mode) {
		pid_t launcher = fork();
		if (launcher < 0)
			return fail("fork: %s", strerror(errno));
		if (launcher > 0)
			return root_waits(launcher, dirfd, &ls.cg);
	}
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
	log_init("launcher");
	char limits[512];
	vmm_cgroup_describe(&ls.cg, NULL, limits, sizeof(limits));
	log_info("VM resource limits: %s", limits);
	if (in.system_mode) {
		vmm_range(&ls);
		/* our own user from here on, with only what we hand on (policy/spawner.policy) */
		if ((rc = sandbox_drop_caps(&policy_spawner, true, launcher_uid, launcher_gid)) < 0) {
			log_err("becoming %s: %s", FCVM_LAUNCHER_USER, strerror(-rc));
			dprintf(ls.user_err, "fcvm: cannot become %s: %s\n", FCVM_LAUNCHER_USER, strerror(-rc));
			return 1;
		}
	}
	int spawner = spawner_start(&ls);
	if (spawner < 0) {
		log_err("cannot start the spawner: %s", strerror(-spawner));
		return 1;
	}
	return launcher_main(&ls, spawner); /* holds the instance lock until it returns */
}

int main(int argc, char **argv)
{
	return launcher_setup_main(argc, argv);
}
