/* exec in the container without `podman exec` (about 0.8 s of podman starting up under
 * emulation): the session's process enters the container as crun exec would, from the
 * container's own OCI state (/run/crun/ID: its config.json and the seccomp filter crun
 * compiled from it): its namespaces and cgroup, the credentials, capabilities, rlimits, umask
 * and filter of its process, and the environment `podman exec` gives (the container's, without
 * the HOSTNAME podman adds at start, HOME the user's home, then -e).
 *
 * What this cannot do exactly (--privileged, -d) goes to podman exec from the start, and so
 * does every failure before the command runs (no such command or user, a bad -w): the command
 * has not run, so podman exec runs it and podman's own message and exit code are the answer.
 *
 * Process shape: the session's process (the "keeper") stays in the guest; it forks the
 * command into the container's PID namespace, forwards signals to it, and exits as it does. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/util.h"

#define CRUN_ROOT  "/run/crun"
#define GROUPS_MAX 64

struct container {
	pid_t pid;
	char cgroup_procs[640]; /* the container's cgroup.procs, as the guest sees it */
	json_t *process;	/* config.json's "process" */
	json_t *cfg;
	struct sock_filter *bpf;
	unsigned short bpf_len;
};

static bool read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return true;
}

/* The container's id (podman's cidfile) and crun's status of it: its pid, its cgroup. */
static bool container_status(char cid[static 65], pid_t *pid, char *cgroup_procs, size_t len)
{
	char buf[80], path[256];
	if (!read_small(ag.cidfile, buf, sizeof(buf)))
		return false;
	buf[strcspn(buf, "\r\n")] = 0;
	if (strlen(buf) != 64 || strspn(buf, "0123456789abcdef") != 64)
		return false;
	memcpy(cid, buf, 65);
	snprintf(path, sizeof(path), CRUN_ROOT "/%s/status", cid);
	json_t *st = json_load_file(path, 0, NULL);
	json_int_t p = st ? json_integer_value(json_object_get(st, "pid")) : 0;
	const char *cg = st ? json_string_value(json_object_get(st, "cgroup-path")) : NULL;
	*pid = (pid_t)p;
	if (cgroup_procs && cg && cg[0])
		snprintf(cgroup_procs, len, "/sys/fs/cgroup%s/cgroup.procs", cg);
	json_decref(st);
	return p > 1;
}

bool fastexec_ptmx(char *path, size_t len)
{
	char cid[65];
	pid_t pid;
	return container_status(cid, &pid, NULL, 0) &&
	       snprintf(path, len, "/proc/%d/root/dev/pts/ptmx", (int)pid) < (int)len;
}

static bool container_load(struct container *ct)
{
	char cid[65], path[256];
	if (!container_status(cid, &ct->pid, ct->cgroup_procs, sizeof(ct->cgroup_procs)))
		return false;
	snprintf(path, sizeof(path), CRUN_ROOT "/%s/config.json", cid);
	if (!(ct->cfg = json_load_file(path, 0, NULL)) || !(ct->process = json_object_get(ct->cfg, "process")))
		return false;
	snprintf(path, sizeof(path), CRUN_ROOT "/%s/seccomp.bpf", cid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) { /* crun's compiled filter: sock_filter instructions */
		struct stat sb;
		if (fstat(fd, &sb) < 0 || sb.st_size <= 0 || sb.st_size % sizeof(struct sock_filter) ||
		    sb.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS || !(ct->bpf = malloc((size_t)sb.st_size)) ||
		    read(fd, ct->bpf, (size_t)sb.st_size) != sb.st_size) {
			close(fd);
			return false;
		}
		ct->bpf_len = (unsigned short)(sb.st_size / sizeof(struct sock_filter));
		close(fd);
	} else if (json_object_get(json_object_get(ct->cfg, "linux"), "seccomp")) {
		return false; /* a filter is wanted and crun's compiled one is not there */
	}
	return true;
}

/* ---- in the container ---- */

struct creds {
	uid_t uid;
	gid_t gid;
	gid_t groups[GROUPS_MAX];
	int ngroups;
	char home[256];
};

static bool all_digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

/* The container's /etc/passwd entry for name (or uid, when name is NULL). */
static bool passwd_find(const char *name, uid_t uid, struct passwd *out, char *buf, size_t len)
{
	FILE *f = fopen("/etc/passwd", "re");
	struct passwd *pw;
	bool found = false;
	if (!f)
		return false;
	while (!found && (pw = fgetpwent(f)))
		if (name ? strcmp(pw->pw_name, name) == 0 : pw->pw_uid == uid) {
			found = snprintf(buf, len, "%s", pw->pw_dir) < (int)len;
			*out = *pw;
			out->pw_dir = buf;
		}
	fclose(f);
	return found;
}

static bool group_find(const char *name, gid_t *gid)
{
	FILE *f = fopen("/etc/group", "re");
	struct group *gr;
	bool found = false;
	if (!f)
		return false;
	while (!found && (gr = fgetgrent(f)))
		if (strcmp(gr->gr_name, name) == 0) {
			*gid = gr->gr_gid;
			found = true;
		}
	fclose(f);
	return found;
}

/* Who the command runs as: -u USER[:GROUP] as podman resolves it in the container's files
 * (a known user's gid and home; an unknown uid gets gid 0 and an empty HOME), or the
 * container's own user. False where podman would refuse: podman exec says why. */
static bool creds_resolve(const json_t *process, const char *spec, struct creds *c)
{
	struct passwd pw;
	char name[256];
	memset(c, 0, sizeof(*c));
	if (!spec) {
		json_t *u = json_object_get(process, "user"), *g;
		size_t i;
		c->uid = (uid_t)json_integer_value(json_object_get(u, "uid"));
		c->gid = (gid_t)json_integer_value(json_object_get(u, "gid"));
		json_array_foreach(json_object_get(u, "additionalGids"), i, g) if (c->ngroups < GROUPS_MAX)
		    c->groups[c->ngroups++] = (gid_t)json_integer_value(g);
		passwd_find(NULL, c->uid, &pw, c->home, sizeof(c->home));
		return true;
	}
	if (snprintf(name, sizeof(name), "%s", spec) >= (int)sizeof(name))
		return false;
	char *group = strchr(name, ':');
	if (group)
		*group++ = 0;
	if (all_digits(name)) {
		c->uid = (uid_t)strtoul(name, NULL, 10);
		if (passwd_find(NULL, c->uid, &pw, c->home, sizeof(c->home)))
			c->gid = pw.pw_gid;
	} else {
		if (!name[0] || !passwd_find(name, 0, &pw, c->home, sizeof(c->home)))
			return false;
		c->uid = pw.pw_uid;
		c->gid = pw.pw_gid;
	}
	if (group) {
		if (all_digits(group))
			c->gid = (gid_t)strtoul(group, NULL, 10);
		else if (!group_find(group, &c->gid))
			return false;
	}
	return true;
}

static bool env_key_is(const char *kv, const char *key)
{
	size_t n = strlen(key);
	return strncmp(kv, key, n) == 0 && kv[n] == '=';
}

/* podman exec's environment: the container's (less HOSTNAME and HOME), -e replacing in
 * place or appended, then HOME as the user's home unless -e set it. */
static char **exec_env(const json_t *process, char *const *extra, const char *home)
{
	json_t *env = json_object_get(process, "env"), *e;
	size_t n = json_array_size(env), i, k = 0;
	size_t nextra = 0;
	while (extra && extra[nextra])
		nextra++;
	char **v = calloc(n + nextra + 2, sizeof(*v));
	bool has_home = false;
	if (!v)
		return NULL;
	json_array_foreach(env, i, e)
	{
		const char *kv = json_string_value(e);
		if (kv && strchr(kv, '=') && !env_key_is(kv, "HOSTNAME") && !env_key_is(kv, "HOME"))
			v[k++] = (char *)kv;
	}
	for (size_t j = 0; j < nextra; j++) {
		size_t klen = strcspn(extra[j], "=");
		size_t m = 0;
		while (m < k && !(strncmp(v[m], extra[j], klen) == 0 && v[m][klen] == '='))
			m++;
		v[m] = extra[j];
		if (m == k)
			k++;
		has_home |= klen == 4 && strncmp(extra[j], "HOME", 4) == 0;
	}
	if (!has_home) {
		static char home_kv[300];
		snprintf(home_kv, sizeof(home_kv), "HOME=%s", home);
		v[k++] = home_kv;
	}
	v[k] = NULL;
	return v;
}

static const struct {
	const char *name;
	int res;
} rlimit_names[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},		  {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},	  {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},	  {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},	  {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},	  {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},	  {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},	  {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

static bool apply_rlimits(const json_t *process)
{
	json_t *r;
	size_t i;
	json_array_foreach(json_object_get(process, "rlimits"), i, r)
	{
		const char *type = json_string_value(json_object_get(r, "type"));
		size_t k = 0;
		while (k < ARRAY_LEN(rlimit_names) && (!type || strcmp(type, rlimit_names[k].name) != 0))
			k++;
		if (k == ARRAY_LEN(rlimit_names))
			return false;
		struct rlimit rl = {.rlim_cur = (rlim_t)json_integer_value(json_object_get(r, "soft")),
				    .rlim_max = (rlim_t)json_integer_value(json_object_get(r, "hard"))};
		if (setrlimit(rlimit_names[k].res, &rl) < 0)
			return false;
	}
	return true;
}

/* One capability set of the spec ("bounding", "effective", ...) into c, as flag. */
static bool caps_of(const json_t *caps, const char *set, cap_t c, cap_flag_t flag, bool bound[CAP_LAST_CAP + 1])
{
	json_t *e;
	size_t i;
	json_array_foreach(json_object_get(caps, set), i, e)
	{
		cap_value_t v;
		const char *name = json_string_value(e);
		if (!name || cap_from_name(name, &v) < 0)
			return false;
		if (v > CAP_LAST_CAP)
			continue; /* newer than this kernel's headers: crun skips them too */
		if (c && cap_set_flag(c, flag, 1, &v, CAP_SET) < 0)
			return false;
		if (bound)
			bound[v] = true;
	}
	return true;
}

/* Credentials, capabilities and the filter, in the order that keeps each step allowed: the
 * bounding set while we hold CAP_SETPCAP, the ids with KEEPCAPS, the filter while
 * CAP_SYS_ADMIN is still effective (no_new_privs may be off), then the process's own sets. */
static bool enter_creds(const struct container *ct, const struct creds *c)
{
	json_t *caps = json_object_get(ct->process, "capabilities");
	bool bound[CAP_LAST_CAP + 1] = {false};
	cap_t final = cap_init();
	if (!final || !caps_of(caps, "bounding", NULL, CAP_EFFECTIVE, bound) ||
	    !caps_of(caps, "effective", final, CAP_EFFECTIVE, NULL) ||
	    !caps_of(caps, "permitted", final, CAP_PERMITTED, NULL) ||
	    !caps_of(caps, "inheritable", final, CAP_INHERITABLE, NULL))
		return false;
	for (cap_value_t v = 0; v <= CAP_LAST_CAP; v++)
		if (!bound[v] && cap_drop_bound(v) < 0 && errno != EINVAL)
			return false;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgroups((size_t)c->ngroups, c->groups) < 0 ||
	    setresgid(c->gid, c->gid, c->gid) < 0 || setresuid(c->uid, c->uid, c->uid) < 0)
		return false;
	cap_t all = cap_get_proc(); /* the permitted set survived; make it effective again */
	bool ok = all && cap_fill(all, CAP_EFFECTIVE, CAP_PERMITTED) == 0 && cap_set_proc(all) == 0;
	cap_free(all);
	if (!ok)
		return false;
	json_t *nnp = json_object_get(ct->process, "noNewPrivileges");
	if (json_is_true(nnp) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return false;
	if (ct->bpf) {
		struct sock_fprog prog = {.len = ct->bpf_len, .filter = ct->bpf};
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
			return false;
	}
	ok = cap_set_proc(final) == 0;
	cap_free(final);
	json_t *e;
	size_t i;
	json_array_foreach(json_object_get(caps, "ambient"), i, e)
	{
		cap_value_t v;
		if (ok && cap_from_name(json_string_value(e), &v) == 0 && v <= CAP_LAST_CAP)
			ok = cap_set_ambient(v, CAP_SET) == 0;
	}
	return ok;
}

/* execve along the command's own PATH (the container's), as crun looks it up */
static void exec_path(char *const *argv, char *const *envp)
{
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (char *const *e = envp; *e; e++)
		if (env_key_is(*e, "PATH"))
			path = *e + 5;
	if (strchr(argv[0], '/')) {
		execve(argv[0], argv, envp);
		return;
	}
	char file[PATH_MAX];
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		if (n > 0 && snprintf(file, sizeof(file), "%.*s/%s", (int)n, p, argv[0]) < (int)sizeof(file))
			execve(file, argv, envp);
		p += n + (p[n] == ':');
	}
}

static const char *const ns_names[] = {"ipc", "uts", "net", "cgroup", "mnt"}; /* mnt last */

/* The command's process: already in the container's PID namespace; err is where it says it
 * failed before running the command (its CLOEXEC end closes unread when exec works). */
static void __attribute__((noreturn))
command(const struct container *ct, const int ns[], const struct session *s, const sigset_t *mask, int err)
{
	struct creds c;
	if (ct->cgroup_procs[0]) {
		int fd = open(ct->cgroup_procs, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			goto fail;
		close(fd);
	}
	for (size_t i = 0; i < ARRAY_LEN(ns_names); i++)
		if (setns(ns[i], 0) < 0)
			goto fail;
	const char *cwd = s->workdir ? s->workdir : json_string_value(json_object_get(ct->process, "cwd"));
	if (chdir("/") < 0 || (cwd && chdir(cwd) < 0) || !creds_resolve(ct->process, s->user, &c))
		goto fail;
	char **envp = exec_env(ct->process, s->env, c.home);
	json_t *umask_v = json_object_get(json_object_get(ct->process, "user"), "umask");
	umask(umask_v ? (mode_t)json_integer_value(umask_v) : 022);
	json_t *oom = json_object_get(ct->process, "oomScoreAdj");
	if (oom) {
		char v[24];
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		int len = snprintf(v, sizeof(v), "%lld", (long long)json_integer_value(oom));
		if (fd < 0 || write(fd, v, (size_t)len) != len)
			goto fail;
		close(fd);
	}
	if (!envp || !apply_rlimits(ct->process) || !enter_creds(ct, &c))
		goto fail;
	sigprocmask(SIG_SETMASK, mask, NULL);
	exec_path(s->argv, envp);
fail:;
	int e = errno;
	ssize_t w = write(err, &e, sizeof(e));
	(void)w;
	_exit(127);
}

/* Wait for the command, passing on what the host sends us (without a pty: a pty's signals
 * reach the whole group already), and end as it ended. */
static void __attribute__((noreturn)) keep(pid_t pid, bool tty)
{
	sigset_t all;
	sigfillset(&all);
	for (;;) {
		int sig = sigwaitinfo(&all, NULL);
		if (sig == SIGCHLD) {
			int st;
			pid_t r = waitpid(pid, &st, WNOHANG);
			if (r == pid)
				_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		} else if (sig > 0 && !tty) {
			kill(pid, sig);
		}
	}
}

bool fastexec_possible(const struct session *s)
{
	return ag.boot && !s->privileged && !s->detach && ag.cstate == CS_RUNNING;
}

void fastexec_child(const struct session *s, char *const *podman_argv, char *const *podman_envp)
{
	struct container ct = {0};
	int ns[ARRAY_LEN(ns_names)], pidns = -1, own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	int err[2] = {-1, -1};
	sigset_t all, old;
	char path[64];
	bool ok = own_pidns >= 0 && container_load(&ct);
	for (size_t i = 0; i < ARRAY_LEN(ns_names); i++) {
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)ct.pid, ns_names[i]);
		ns[i] = ok ? open(path, O_RDONLY | O_CLOEXEC) : -1;
		ok &= ns[i] >= 0;
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)ct.pid);
	ok = ok && (pidns = open(path, O_RDONLY | O_CLOEXEC)) >= 0 && pipe2(err, O_CLOEXEC) == 0 &&
	     setns(pidns, CLONE_NEWPID) == 0;
	if (ok) {
		sigfillset(&all);
		signal(SIGCHLD, SIG_DFL);
		sigprocmask(SIG_BLOCK, &all, &old);
		pid_t pid = fork();
		if (pid == 0) {
			close(err[0]);
			command(&ct, ns, s, &old, err[1]);
		}
		close(err[1]);
		int e;
		ok = pid > 0 && read(err[0], &e, sizeof(e)) == 0; /* EOF: the command runs */
		if (ok) {
			int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (nul >= 0 && !s->tty) /* a pty stays: the session's leader keeps its terminal */
				for (int fd = 0; fd < 3; fd++)
					dup2(nul, fd);
			keep(pid, s->tty);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
		sigprocmask(SIG_SETMASK, &old, NULL);
		setns(own_pidns, CLONE_NEWPID); /* podman's own children stay in the guest's */
	}
	/* not possible here, or failed before the command ran: podman exec says what it says */
	environ = (char **)podman_envp;
	execvp(podman_argv[0], podman_argv);
	dprintf(2, "fcvm-agent: %s: %s\n", podman_argv[0], strerror(errno));
	_exit(127);
}
