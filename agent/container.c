/* The container: `podman load` of the image disk (or an image already in the guest's store,
 * e.g. the demo image pre-loaded in the rootfs), then `podman run` (the `run` session),
 * `podman exec` into it, and its state (none, loading, running, exited) for hello/health. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/assets.h"
#include "common/util.h"

#define LOAD_OUT_MAX 8192

static struct {
	struct session *s; /* the run session while podman load runs */
	pid_t load_pid;
	int load_fd; /* podman load's stdout and stderr */
	int load_status;
	bool load_reaped;
	pid_t watch_pid; /* `podman wait --condition=running`, until the container runs */
	char out[LOAD_OUT_MAX];
	size_t outlen;
} ct = {.load_pid = -1, .load_fd = -1, .watch_pid = -1};

const char *container_state_name(void)
{
	static const char *const names[] = {"none", "loading", "starting", "running", "exited"};
	return names[ag.cstate];
}

char **strv_dup(const struct pval *v)
{
	uint32_t n = v ? v->list.n : 0;
	char **r = calloc(n + 1, sizeof(*r));

	if (!r)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		if (!(r[i] = strdup(v->list.v[i]))) {
			strv_free(r);
			return NULL;
		}
	return r;
}

void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* A growable NULL-terminated vector; on allocation failure it turns NULL for good. */
struct strv {
	char **v;
	size_t n, cap;
	bool oom;
};

static void sv_add(struct strv *sv, const char *s)
{
	if (sv->oom)
		return;
	if (sv->n + 2 > sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 16;
		char **v = realloc(sv->v, cap * sizeof(*v));
		if (!v) {
			sv->oom = true;
			return;
		}
		sv->v = v;
		sv->cap = cap;
	}
	if (!(sv->v[sv->n] = strdup(s))) {
		sv->oom = true;
		return;
	}
	sv->v[++sv->n] = NULL;
}

static char **sv_done(struct strv *sv)
{
	if (sv->oom || !sv->v) {
		if (sv->v) {
			sv->v[sv->n] = NULL;
			strv_free(sv->v);
		}
		return sv->oom ? NULL : calloc(1, sizeof(char *));
	}
	return sv->v;
}

static bool env_has(char *const *env, const char *kv)
{
	size_t k = strcspn(kv, "=");
	for (; env && *env; env++)
		if (strncmp(*env, kv, k) == 0 && (*env)[k] == '=')
			return true;
	return false;
}

/* The guest's minimal environment, with extra's entries replacing or adding to it. */
char **default_env(char *const *extra, bool tty)
{
	static const char *const base[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
					   "HOME=/root", "TERM=xterm"};
	struct strv sv = {0};

	for (size_t i = 0; i < ARRAY_LEN(base); i++) {
		if (i == 2 && !tty)
			continue;
		if (!env_has(extra, base[i]))
			sv_add(&sv, base[i]);
	}
	for (; extra && *extra; extra++)
		sv_add(&sv, *extra);
	return sv_done(&sv);
}

/* [-i] [-t] [-e K=V]... */
static void podman_stdio_args(struct strv *sv, const struct session *s, char *const *env)
{
	if (s->want_stdin)
		sv_add(sv, "-i");
	if (s->tty)
		sv_add(sv, "-t");
	for (; env && *env; env++) {
		sv_add(sv, "-e");
		sv_add(sv, *env);
	}
}

char **container_exec_argv(const struct session *s, char *const *argv, char *const *env)
{
	struct strv sv = {0};

	sv_add(&sv, ag.podman);
	sv_add(&sv, "exec");
	podman_stdio_args(&sv, s, env);
	if (s->workdir) {
		sv_add(&sv, "-w");
		sv_add(&sv, s->workdir);
	}
	if (s->user) {
		sv_add(&sv, "-u");
		sv_add(&sv, s->user);
	}
	if (s->privileged)
		sv_add(&sv, "--privileged");
	if (s->detach)
		sv_add(&sv, "-d");
	sv_add(&sv, CONTAINER_NAME);
	for (; *argv; argv++)
		sv_add(&sv, *argv);
	return sv_done(&sv);
}

/* podman run's options of a run request, each one argument --NAME[=VALUE]: a value can
 * never be taken for another option */
char **container_run_options(const struct precord *req)
{
	static const char *const strs[][2] = {
	    {"workdir", "--workdir"}, {"user", "--user"}, {"hostname", "--hostname"}, {"entrypoint", "--entrypoint"}};
	static const char *const lists[][2] = {
	    {"labels", "--label"}, {"tmpfs", "--tmpfs"}, {"cap_add", "--cap-add"}, {"cap_drop", "--cap-drop"}};
	struct strv sv = {0};
	char arg[PROTO_MAX_STR + 32];
	bool b;
	for (size_t i = 0; i < ARRAY_LEN(strs); i++) {
		const char *v = prec_str(req, strs[i][0]);
		if (v && snprintf(arg, sizeof(arg), "%s=%s", strs[i][1], v) < (int)sizeof(arg))
			sv_add(&sv, arg);
	}
	for (size_t i = 0; i < ARRAY_LEN(lists); i++) {
		const struct pval *l = prec_get(req, lists[i][0]);
		for (uint32_t k = 0; l && k < l->list.n; k++)
			if (snprintf(arg, sizeof(arg), "%s=%s", lists[i][1], l->list.v[k]) < (int)sizeof(arg))
				sv_add(&sv, arg);
	}
	if (prec_bool(req, "read_only", &b) && b)
		sv_add(&sv, "--read-only");
	if (prec_bool(req, "privileged", &b) && b)
		sv_add(&sv, "--privileged");
	return sv_done(&sv);
}

static char **run_argv(const struct session *s, const char *ref)
{
	struct strv sv = {0};

	sv_add(&sv, ag.podman);
	sv_add(&sv, "run");
	const char *hold = s->hold ? hold_prepare(s->id) : NULL;
	if (hold)
		sv_add(&sv, hold);
	sv_add(&sv, "--name");
	sv_add(&sv, CONTAINER_NAME);
	sv_add(&sv, ag.net_on ? "--network=host" : "--network=none");
	sv_add(&sv, "--cidfile");
	sv_add(&sv, ag.cidfile);
	podman_stdio_args(&sv, s, s->env);
	for (char **o = s->run_opts; o && *o; o++)
		sv_add(&sv, *o);
	sv_add(&sv, ref);
	for (char **a = s->argv; *a; a++)
		sv_add(&sv, *a);
	return sv_done(&sv);
}

static void fail_run(struct session *s, const char *text)
{
	ag.cstate = CS_EXITED;
	ag.cexit = 125;
	session_fail(s, 125, text);
}

/* The reference podman load printed: "Loaded image: REF" or "Loaded image(s): REF[,REF...]". */
static bool parse_ref(const char *out, char *ref, size_t reflen)
{
	static const char *const keys[] = {"Loaded image: ", "Loaded image(s): "};

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		const char *p = strstr(out, keys[i]);
		if (!p)
			continue;
		p += strlen(keys[i]);
		p += strspn(p, " ");
		size_t n = strcspn(p, ",\r\n");
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == 0 || n >= reflen)
			return false;
		memcpy(ref, p, n);
		ref[n] = 0;
		return true;
	}
	return false;
}

/* `podman run` says nothing when the container starts: a watcher does. It waits (cheaply, in
 * the shell) for podman's cidfile, i.e. for the container to exist, then (in a guest) polls
 * crun's state of it, or (the host-side test mode) runs one `podman wait --condition=running`:
 * each podman start costs about a second of CPU under emulation, so podman is not polled. */
static void start_watch(void)
{
	unlink(ag.cidfile); /* podman refuses to overwrite one */
	pid_t pid = fork();
	if (pid < 0) {
		ag.cstate = CS_RUNNING; /* no watcher: say running rather than never */
		return;
	}
	if (pid == 0) {
		char **envp = default_env(NULL, false);
		sigset_t none;
		int nul = open("/dev/null", O_RDWR);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0)
			_exit(126);
		syscall(SYS_close_range, 3U, ~0U, 0U);
		if (envp)
			environ = envp;
		/* in a guest, crun's own state says it (a few ms a call) rather than one more podman */
		static const char podman_wait[] =
		    "for i in $(seq 1200); do [ -s \"$1\" ] && exec \"$0\" wait --condition=running " CONTAINER_NAME
		    "; sleep 0.05; done; exit 1";
		static const char crun_state[] =
		    "for i in $(seq 6000); do [ -s \"$1\" ] && crun state \"$(cat \"$1\")\" 2>/dev/null | "
		    "grep -q '\"status\": \"running\"' && exit 0; sleep 0.02; done; exit 1";
		char *const argv[] = {
		    "sh", "-c", (char *)(ag.boot ? crun_state : podman_wait), (char *)ag.podman, (char *)ag.cidfile,
		    NULL};
		execvp(argv[0], argv);
		_exit(127);
	}
	ct.watch_pid = pid;
}

/* podman run of ref, and the watcher that says when the container runs. */
static void start_run(struct session *s, const char *ref)
{
	char text[256];
	char **argv = run_argv(s, ref);
	char **envp = default_env(NULL, s->tty);
	int r = argv && envp ? session_spawn(s, argv, envp) : -1;
	strv_free(argv);
	strv_free(envp);
	if (r < 0) {
		snprintf(text, sizeof(text), "fcvm-agent: cannot start podman run: %s\n", strerror(errno));
		fail_run(s, text);
		return;
	}
	ag.cstate = CS_STARTING;
	alog("container %s starting", ref);
	start_watch();
}

int container_run(struct session *s, const char *ref, char *why, size_t whylen)
{
	int p[2];

	ag.cstate = CS_LOADING;
	/* a guest whose rootfs has no image store (assets from before it): load as usual */
	if (ref && ag.boot && access(FCVM_IMAGE_STORE, F_OK) < 0 && ag.image[0]) {
		alog("no %s: loading %s instead of using %s", FCVM_IMAGE_STORE, ag.image, ref);
		ref = NULL;
	}
	if (ref) {
		alog("image %s: in the image store, no load", ref);
		start_run(s, ref);
		return PE_OK;
	}
	if (!ag.image[0]) {
		fail_run(s, "fcvm-agent: no image disk\n");
		return PE_OK;
	}
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		ag.cstate = CS_NONE;
		return PE_INTERNAL;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		ag.cstate = CS_NONE;
		return PE_INTERNAL;
	}
	if (pid == 0) {
		char *const argv[] = {(char *)ag.podman, "load", "-i", ag.image, NULL};
		char **envp = default_env(NULL, false);
		sigset_t none;
		int nul = open("/dev/null", O_RDONLY);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		setsid();
		fcntl(p[1], F_SETFL, 0);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
			_exit(126);
		syscall(SYS_close_range, 3U, ~0U, 0U);
		if (envp)
			environ = envp; /* execvp searches the PATH of environ */
		execvp(argv[0], argv);
		dprintf(2, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	ct.s = s;
	ct.load_pid = pid;
	ct.load_fd = p[0];
	ct.load_reaped = false;
	ct.outlen = 0;
	alog("podman load -i %s: pid %d", ag.image, (int)pid);
	return PE_OK;
}

/* Both the load's output and its exit are in: start the container, or report why not. */
static void load_done(void)
{
	struct session *s = ct.s;
	int st = ct.load_status;
	char ref[512], text[LOAD_OUT_MAX + 128];

	ct.s = NULL;
	ct.load_pid = -1;
	ct.out[ct.outlen] = 0;
	if (!s)
		return;
	if (s->released) {
		fail_run(s, "");
		return;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(text, sizeof(text), "fcvm-agent: podman load failed (exit %d):\n%s",
			 WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), ct.out);
		fail_run(s, text);
		return;
	}
	if (!parse_ref(ct.out, ref, sizeof(ref))) {
		snprintf(text, sizeof(text), "fcvm-agent: podman load printed no image reference:\n%s", ct.out);
		fail_run(s, text);
		return;
	}
	start_run(s, ref);
}

bool container_reaped(pid_t pid, int status)
{
	if (pid > 0 && pid == ct.watch_pid) {
		ct.watch_pid = -1;
		if (ag.cstate == CS_STARTING && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			ag.cstate = CS_RUNNING;
			alog("container running");
		}
		return true;
	}
	if (pid != ct.load_pid || ct.load_reaped)
		return false;
	ct.load_reaped = true;
	ct.load_status = status;
	if (ct.load_fd < 0)
		load_done();
	return true;
}

void container_run_exited(int code)
{
	if (ct.watch_pid > 0)
		kill(-ct.watch_pid, SIGKILL);
	unlink(ag.cidfile);
	ag.cstate = CS_EXITED;
	ag.cexit = code;
}

int container_pollfd(struct pollfd *p)
{
	if (ct.load_fd < 0)
		return 0;
	p[0] = (struct pollfd){.fd = ct.load_fd, .events = POLLIN};
	return 1;
}

void container_events(const struct pollfd *p)
{
	char buf[4096];
	ssize_t n = read(ct.load_fd, buf, sizeof(buf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		/* keep the first bytes only: the reference comes early, errors are short */
		size_t k = (size_t)n;
		if (k > LOAD_OUT_MAX - 1 - ct.outlen)
			k = LOAD_OUT_MAX - 1 - ct.outlen;
		memcpy(ct.out + ct.outlen, buf, k);
		ct.outlen += k;
		return;
	}
	close_fdp(&ct.load_fd);
	if (ct.load_reaped)
		load_done();
}

void container_kill(int sig)
{
	if (ct.load_pid > 0 && !ct.load_reaped)
		kill(-ct.load_pid, sig);
}
