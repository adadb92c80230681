/* Sessions: one process each, its stdio (pipes, or a pty), its output kept until the host
 * acknowledges it (at most OUT_WINDOW bytes: then its pipes are not read), its exit. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/util.h"

static struct session *session_new(uint32_t id, enum session_kind kind)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->id = id;
	s->kind = kind;
	s->pid = -1;
	s->in_fd = s->out_fd[0] = s->out_fd[1] = s->pty = -1;
	for (int i = 0; i < 3; i++)
		s->child_fd[i] = -1;
	return s;
}

static void session_free(struct session *s)
{
	for (int i = 0; i < 3; i++)
		close_fdp(&s->child_fd[i]);
	close_fdp(&s->in_fd);
	close_fdp(&s->out_fd[0]);
	close_fdp(&s->out_fd[1]);
	close_fdp(&s->pty);
	while (s->head) {
		struct chunk *c = s->head;
		s->head = c->next;
		free(c);
	}
	strv_free(s->argv);
	strv_free(s->env);
	free(s->workdir);
	free(s->user);
	strv_free(s->run_opts);
	free(s->inq);
	free(s);
}

struct session *session_find(uint32_t id)
{
	for (struct session *s = ag.sessions; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static char *str_dup_or_null(const char *v)
{
	return v ? strdup(v) : NULL;
}

static int dup_cloexec(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

static int set_nonblock(int fd)
{
	return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Make the child's stdio (kept in child_fd until the spawn) and our ends. */
/* A pty of the guest's devpts, or of ptmx's (the container's, so that its /dev/pts shows it). */
static int session_stdio(struct session *s, unsigned rows, unsigned cols, const char *ptmx)
{
	int p[2];

	if (s->tty) {
		char name[64];
		int m = ptmx ? open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC) : posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (m < 0)
			return -1;
		s->pty = m;
		int sl = -1;
		if (ptmx)
			sl = unlockpt(m) < 0 ? -1 : ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
		else if (grantpt(m) == 0 && unlockpt(m) == 0 && ptsname_r(m, name, sizeof(name)) == 0)
			sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (sl < 0)
			return -1;
		struct winsize ws = {.ws_row = (unsigned short)(rows ? rows : 24),
				     .ws_col = (unsigned short)(cols ? cols : 80)};
		ioctl(m, TIOCSWINSZ, &ws);
		s->child_fd[0] = sl;
		s->child_fd[1] = dup_cloexec(sl);
		s->child_fd[2] = dup_cloexec(sl);
		s->out_fd[0] = dup_cloexec(m);
		if (s->want_stdin)
			s->in_fd = dup_cloexec(m);
		if (s->child_fd[1] < 0 || s->child_fd[2] < 0 || s->out_fd[0] < 0 || (s->want_stdin && s->in_fd < 0))
			return -1;
		set_nonblock(s->out_fd[0]);
		if (s->in_fd >= 0)
			set_nonblock(s->in_fd);
		return 0;
	}
	if (s->want_stdin) {
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		s->child_fd[0] = p[0];
		s->in_fd = p[1];
		set_nonblock(s->in_fd);
	} else {
		s->child_fd[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (s->child_fd[0] < 0)
			return -1;
	}
	for (int i = 0; i < 2; i++) {
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
			return -1;
		s->out_fd[i] = p[0];
		s->child_fd[i + 1] = p[1];
		/* the child's end blocks: a full pipe is how back-pressure reaches it */
		fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) & ~O_NONBLOCK);
	}
	return 0;
}

int session_spawn(struct session *s, char *const *argv, char *const *envp)
{
	return session_spawn_exec(s, argv, envp, false);
}

/* fast: argv is podman exec's, tried only if fastexec_child cannot do without it */
int session_spawn_exec(struct session *s, char *const *argv, char *const *envp, bool fast)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL); /* ignored signals stay ignored across exec */
		setsid();
		for (int i = 0; i < 3; i++)
			if (dup2(s->child_fd[i], i) < 0)
				_exit(126);
		if (s->tty && ioctl(0, TIOCSCTTY, 0) < 0)
			_exit(126);
		syscall(SYS_close_range, 3U, ~0U, 0U);
		if (fast)
			fastexec_child(s, argv, envp);
		/* execvpe would search the agent's PATH; the command's own one is meant */
		environ = (char **)envp;
		execvp(argv[0], argv);
		int err = errno;
		dprintf(2, "fcvm-agent: %s: %s\n", argv[0], strerror(err));
		_exit(err == ENOENT ? 127 : 126);
	}
	s->pid = pid;
	for (int i = 0; i < 3; i++)
		close_fdp(&s->child_fd[i]);
	alog("session %u: pid %d (%s)", s->id, (int)pid, argv[0]);
	return 0;
}

/* Append output (the caller respects the window, except for the agent's own messages). */
static void session_append(struct session *s, int stream, const unsigned char *p, size_t n)
{
	while (n > 0) {
		struct chunk *c = s->tail;
		if (!c || c->stream != stream || c->len == OUT_CHUNK) {
			c = malloc(sizeof(*c));
			if (!c)
				abort();
			s->nchunks++;
			c->next = NULL;
			c->off = s->total;
			c->len = 0;
			c->stream = (uint8_t)stream;
			if (s->tail)
				s->tail->next = c;
			else
				s->head = c;
			s->tail = c;
		}
		size_t k = OUT_CHUNK - c->len < n ? OUT_CHUNK - c->len : n;
		memcpy(c->data + c->len, p, k);
		c->len += (uint32_t)k;
		s->total += k;
		p += k;
		n -= k;
	}
}

/* The process could not start (e.g. podman load failed): text on stderr, then the exit. */
void session_fail(struct session *s, int code, const char *text)
{
	session_append(s, s->tty ? 1 : 2, (const unsigned char *)text, strlen(text));
	for (int i = 0; i < 3; i++)
		close_fdp(&s->child_fd[i]);
	close_fdp(&s->out_fd[0]);
	close_fdp(&s->out_fd[1]);
	close_fdp(&s->in_fd);
	s->done = true;
	s->code = code;
}

int session_start(const struct precord *req, char *why, size_t whylen)
{
	uint64_t id = 0, rows = 0, cols = 0;
	const char *kind = prec_str(req, "kind");
	const struct pval *argv = prec_get(req, "argv"), *env = prec_get(req, "env");
	enum session_kind k;
	struct session *s;
	bool b;
	int rc = PE_INTERNAL;

	prec_uint(req, "session", &id);
	prec_uint(req, "rows", &rows);
	prec_uint(req, "cols", &cols);
	if (!kind || !argv) {
		snprintf(why, whylen, "kind and argv are required");
		return PE_INVALID;
	}
	if (strcmp(kind, "vm") == 0)
		k = SK_VM;
	else if (strcmp(kind, "run") == 0)
		k = SK_RUN;
	else if (strcmp(kind, "exec") == 0)
		k = SK_EXEC;
	else {
		snprintf(why, whylen, "unknown kind '%s'", kind);
		return PE_INVALID;
	}
	if (k != SK_RUN && argv->list.n == 0) {
		snprintf(why, whylen, "empty argv");
		return PE_INVALID;
	}
	if (session_find((uint32_t)id)) {
		snprintf(why, whylen, "session %llu exists", (unsigned long long)id);
		return PE_EXISTS;
	}
	if (k == SK_RUN && ag.cstate != CS_NONE) {
		snprintf(why, whylen, "the container was already started");
		return PE_EXISTS;
	}
	if (k == SK_EXEC && ag.cstate != CS_RUNNING) {
		snprintf(why, whylen, "the container is not running");
		return PE_NOT_FOUND;
	}
	if (ag.shutting_down) {
		snprintf(why, whylen, "shutting down");
		return PE_BUSY;
	}
	if (!(s = session_new((uint32_t)id, k)))
		goto fail;
	s->tty = prec_bool(req, "tty", &b) && b;
	s->want_stdin = prec_bool(req, "stdin", &b) && b;
	s->argv = strv_dup(argv);
	s->env = strv_dup(env);
	s->privileged = prec_bool(req, "privileged", &b) && b;
	s->detach = prec_bool(req, "detach", &b) && b;
	s->workdir = str_dup_or_null(prec_str(req, "workdir"));
	s->user = str_dup_or_null(prec_str(req, "user"));
	if (!s->argv || !s->env || (prec_str(req, "workdir") && !s->workdir) || (prec_str(req, "user") && !s->user))
		goto fail;
	bool fast = k == SK_EXEC && fastexec_possible(s);
	char ptmx[64];
	if (session_stdio(s, (unsigned)rows, (unsigned)cols,
			  fast && s->tty && fastexec_ptmx(ptmx, sizeof(ptmx)) ? ptmx : NULL) < 0) {
		snprintf(why, whylen, "stdio: %s", strerror(errno));
		goto fail;
	}
	if (k == SK_RUN) {
		uint64_t interval = 0, retries = 0;
		prec_uint(req, "health_interval", &interval);
		prec_uint(req, "health_retries", &retries);
		health_configure(prec_str(req, "health_cmd"), (unsigned)interval, (unsigned)retries);
		if (!(s->run_opts = container_run_options(req)))
			goto fail;
		s->hold = prec_bool(req, "hold", &b) && b;
		/* podman load first (the run is spawned when the load ends), unless the image is
		 * already in the guest's store */
		if ((rc = container_run(s, prec_str(req, "image"), why, whylen)) != PE_OK)
			goto fail;
	} else {
		char **cmd = k == SK_VM ? s->argv : container_exec_argv(s, s->argv, s->env);
		char **envp = default_env(k == SK_VM ? s->env : NULL, s->tty);
		int r = cmd && envp ? session_spawn_exec(s, cmd, envp, fast) : -1;
		int err = errno;
		if (cmd != s->argv)
			strv_free(cmd);
		strv_free(envp);
		if (r < 0) {
			snprintf(why, whylen, "spawn: %s", strerror(err));
			goto fail;
		}
	}
	s->next = ag.sessions;
	ag.sessions = s;
	return PE_OK;
fail:
	if (!why[0])
		snprintf(why, whylen, "out of memory");
	if (s)
		session_free(s);
	return rc == PE_OK ? PE_INTERNAL : rc;
}

void session_input(struct session *s, const void *data, size_t n, bool eof)
{
	if (s->in_fd < 0 || s->in_eof)
		return;
	if (s->inlen + n + 1 > INQ_MAX) {
		aerr("session %u: stdin overflow, %zu bytes dropped", s->id, n);
		n = 0;
	}
	if (s->inlen + n + 1 > s->incap) {
		size_t cap = s->incap ? s->incap : 4096;
		while (cap < s->inlen + n + 1)
			cap *= 2;
		unsigned char *q = realloc(s->inq, cap);
		if (!q)
			abort();
		s->inq = q;
		s->incap = cap;
	}
	if (n)
		memcpy(s->inq + s->inlen, data, n);
	s->inlen += n;
	if (eof && s->tty) {
		/* a pty has no end of file to close: send the terminal's EOF character */
		s->inq[s->inlen++] = 4;
	}
	s->in_eof = eof;
}

void session_resize(struct session *s, unsigned rows, unsigned cols)
{
	struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};

	if (s->pty >= 0 && ioctl(s->pty, TIOCSWINSZ, &ws) < 0)
		alog("session %u: resize: %s", s->id, strerror(errno));
}

/* The child's process group; right after the fork it may not have called setsid() yet, and
 * is then still the only process of it. */
static void kill_group(pid_t pid, int sig)
{
	if (kill(-pid, sig) < 0 && errno == ESRCH)
		kill(pid, sig);
}

void session_signal(struct session *s, int sig)
{
	if (s->pid <= 0)
		return;
	/* with a pty, the whole foreground job (its process group: the child is a group leader) */
	if (s->tty)
		kill_group(s->pid, sig);
	else if (kill(s->pid, sig) < 0)
		alog("session %u: kill: %s", s->id, strerror(errno));
}

void session_ack(struct session *s, uint64_t off)
{
	if (off > s->total)
		off = s->total;
	if (off <= s->acked)
		return;
	s->acked = off;
	if (s->sent < off)
		s->sent = off;
	while (s->head && s->head->off + s->head->len <= off) {
		struct chunk *c = s->head;
		s->head = c->next;
		if (!s->head)
			s->tail = NULL;
		free(c);
		s->nchunks--;
	}
}

void session_release(struct session *s)
{
	s->released = true;
	if (s->pid > 0)
		kill_group(s->pid, SIGKILL);
}

static bool session_ended(const struct session *s)
{
	return s->done && s->out_fd[0] < 0 && s->out_fd[1] < 0;
}

void sessions_hello(void)
{
	for (struct session *s = ag.sessions; s; s = s->next) {
		s->sent = s->acked;
		s->exit_sent = false;
	}
}

static void send_output(struct session *s)
{
	const struct chunk *c = s->head;
	struct pmsg m;

	while (c && c->off + c->len <= s->sent)
		c = c->next;
	if (!c)
		return;
	size_t at = (size_t)(s->sent - c->off), n = c->len - at;
	pmsg_init(&m, PK_EVENT, OP_PROC_OUTPUT, 0);
	prec_set_uint(&m, &m.body, "session", s->id);
	prec_set_uint(&m, &m.body, "stream", c->stream);
	prec_set_uint(&m, &m.body, "offset", s->sent);
	prec_set_bin(&m, &m.body, "data", c->data + at, n);
	host_send(&m);
	pmsg_free(&m);
	s->sent += n;
}

static void send_exit(struct session *s)
{
	struct pmsg m;

	pmsg_init(&m, PK_EVENT, OP_PROC_EXIT, 0);
	prec_set_uint(&m, &m.body, "session", s->id);
	prec_set_uint(&m, &m.body, "code", (uint64_t)s->code);
	if (s->sig)
		prec_set_uint(&m, &m.body, "signal", (uint64_t)s->sig);
	prec_set_uint(&m, &m.body, "offset", s->total);
	host_send(&m);
	pmsg_free(&m);
	s->exit_sent = true;
}

void sessions_pump(void)
{
	bool more = true;

	/* round robin, one chunk per session per pass, so one chatty session cannot starve others */
	while (more && host_output_room()) {
		more = false;
		for (struct session *s = ag.sessions; s && host_output_room(); s = s->next) {
			if (s->released)
				continue;
			if (s->sent < s->total) {
				send_output(s);
				more = true;
			} else if (session_ended(s) && !s->exit_sent) {
				send_exit(s);
			}
		}
	}
}

void sessions_sweep(void)
{
	struct session **pp = &ag.sessions;

	while (*pp) {
		struct session *s = *pp;
		if (s->released && session_ended(s)) {
			*pp = s->next;
			session_free(s);
		} else {
			pp = &s->next;
		}
	}
}

void sessions_kill(int sig)
{
	for (struct session *s = ag.sessions; s; s = s->next)
		if (s->pid > 0)
			kill_group(s->pid, sig);
}

bool session_reaped(pid_t pid, int status)
{
	for (struct session *s = ag.sessions; s; s = s->next) {
		if (s->pid != pid)
			continue;
		s->pid = -1;
		s->done = true;
		if (WIFSIGNALED(status)) {
			s->sig = WTERMSIG(status);
			s->code = 128 + s->sig;
		} else {
			s->code = WEXITSTATUS(status);
		}
		/* nobody writes to it any more */
		close_fdp(&s->in_fd);
		if (s->kind == SK_RUN)
			container_run_exited(s->code);
		alog("session %u: exit %d", s->id, s->code);
		return true;
	}
	return false;
}

static size_t window_left(const struct session *s)
{
	uint64_t held = s->total - s->acked;
	if (s->nchunks >= OUT_CHUNKS_MAX)
		return 0;
	return held >= OUT_WINDOW ? 0 : (size_t)(OUT_WINDOW - held);
}

int sessions_pollfds(struct pollfd **pp, size_t *cap, size_t n, struct session ***who, size_t *whocap)
{
	size_t first = n;

	for (struct session *s = ag.sessions; s; s = s->next) {
		if (*cap < n + 3) {
			*cap = (n + 3) * 2;
			*pp = realloc(*pp, *cap * sizeof(**pp));
			if (!*pp)
				abort();
		}
		if (*whocap < n - first + 3) {
			*whocap = (n - first + 3) * 2;
			*who = realloc(*who, *whocap * sizeof(struct session *));
			if (!*who)
				abort();
		}
		bool room = window_left(s) > 0;
		for (int i = 0; i < 2; i++) {
			if (s->out_fd[i] < 0 || !room)
				continue;
			(*who)[n - first] = s;
			(*pp)[n++] = (struct pollfd){.fd = s->out_fd[i], .events = POLLIN};
		}
		if (s->in_fd >= 0 && (s->inlen > 0 || s->in_eof)) {
			(*who)[n - first] = s;
			(*pp)[n++] = (struct pollfd){.fd = s->in_fd, .events = POLLOUT};
		}
	}
	return (int)n;
}

static void read_out(struct session *s, int i)
{
	unsigned char buf[OUT_CHUNK];
	size_t want = window_left(s);
	ssize_t n;

	if (want == 0)
		return;
	if (want > sizeof(buf))
		want = sizeof(buf);
	n = read(s->out_fd[i], buf, want);
	if (n > 0) {
		session_append(s, i + 1, buf, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* EOF; with a pty, EIO once the last slave fd is closed */
	close_fdp(&s->out_fd[i]);
}

static void write_in(struct session *s)
{
	while (s->inlen > 0) {
		ssize_t n = write(s->in_fd, s->inq, s->inlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* the process closed its stdin: drop the rest */
			s->inlen = 0;
			close_fdp(&s->in_fd);
			return;
		}
		memmove(s->inq, s->inq + n, s->inlen - (size_t)n);
		s->inlen -= (size_t)n;
	}
	if (s->in_eof)
		close_fdp(&s->in_fd);
}

void session_events(struct session *s, const struct pollfd *p)
{
	for (int i = 0; i < 2; i++)
		if (p->fd == s->out_fd[i] && p->revents & (POLLIN | POLLHUP | POLLERR))
			read_out(s, i);
	if (p->fd == s->in_fd && p->revents & (POLLOUT | POLLERR | POLLHUP))
		write_in(s);
}
