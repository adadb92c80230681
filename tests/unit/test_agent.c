/* agent/: build/fcvm-agent in its host-side test mode (--channel-fd, --listen), spoken to
 * with the real protocol (docs/agent-protocol.md): sessions, stdio, windows, reconnection,
 * the container kinds against tests/unit/fake-podman.sh. */
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <msgpack.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "common/util.h"
#include "proto/stream.h"
#include "tests/unit/check.h"

#define WAIT_MS	  20000 /* bound on any single wait: a hung agent fails, never hangs */
#define WINDOW	  (256 * 1024)
#define MAX_SESS  16
#define PATTERN	  "abcdefghijklmnopqrstuvwxyz0123456789\n"
#define PAT_LEN	  37
#define BIG_BYTES (1024 * 1024)

static char tmpdir[PATH_MAX];
static bool agent_net_host; /* spawn_agent adds --net-host (a guest with its NIC configured) */

/* A path next to the test binary's repository: cwd first (tests/run), then via /proc/self/exe. */
static void repo_path(const char *rel, char *out, size_t n)
{
	char exe[PATH_MAX];
	ssize_t k;

	if (access(rel, F_OK) == 0 && realpath(rel, out))
		return;
	k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	CHECK(k > 0);
	exe[k] = 0;
	*strrchr(exe, '/') = 0; /* build/tests */
	snprintf(out, n, "%s/../../%s", exe, rel);
}

static void agent_path(char *out, size_t n)
{
	const char *env = getenv("FCVM_AGENT");
	if (env) {
		snprintf(out, n, "%s", env);
		return;
	}
	repo_path("build/fcvm-agent", out, n);
	CHECK(access(out, X_OK) == 0);
}

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fcvm-agent-test.XXXXXX");
	CHECK(mkdtemp(tmpdir) != NULL);
}

/* Start the agent; extra args after the mode's. With listen == NULL it gets one end of a
 * socketpair (returned) and exits when that end closes. */
static pid_t spawn_agent(int *fd, const char *listen, const char *image)
{
	char bin[PATH_MAX], podman[PATH_MAX];
	int sv[2] = {-1, -1};
	pid_t pid;

	agent_path(bin, sizeof(bin));
	repo_path("tests/unit/fake-podman.sh", podman, sizeof(podman));
	if (!listen)
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		const char *argv[16];
		int n = 0;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		argv[n++] = bin;
		if (listen) {
			argv[n++] = "--listen";
			argv[n++] = listen;
		} else {
			dup2(sv[1], 3);
			argv[n++] = "--channel-fd";
			argv[n++] = "3";
			argv[n++] = "--exit-on-eof";
		}
		static char cid[64];
		snprintf(cid, sizeof(cid), "/tmp/fcvm-test-agent.%d.cid", (int)getpid());
		argv[n++] = "--podman";
		argv[n++] = podman;
		argv[n++] = "--cidfile";
		argv[n++] = cid;
		if (image) {
			argv[n++] = "--image";
			argv[n++] = image;
		}
		if (agent_net_host)
			argv[n++] = "--net-host";
		argv[n] = NULL;
		execv(bin, (char **)argv);
		_exit(127);
	}
	if (!listen) {
		close(sv[1]);
		*fd = sv[0];
	}
	return pid;
}

static int connect_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (int i = 0; i < WAIT_MS / 10; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(fd >= 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		struct pollfd none = {.fd = -1};
		poll(&none, 1, 10); /* the agent is still binding: retry, bounded */
	}
	CHECK(!"agent never listened");
	return -1;
}

static void wait_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, WAIT_MS);
	if (r != 1)
		fprintf(stderr, "timed out waiting for the agent\n");
	CHECK(r == 1);
}

static void read_exact(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		wait_readable(fd);
		ssize_t k = read(fd, (char *)buf + got, n - got);
		CHECK(k > 0);
		got += (size_t)k;
	}
}

static void send_msg(int fd, struct pmsg *m)
{
	struct perr e;
	int rc = stream_send_msg(fd, m, &e);
	if (rc != 0)
		fprintf(stderr, "send %s: %s\n", m->op->name, e.msg);
	CHECK_EQ(rc, 0);
	pmsg_free(m);
}

/* ---- what the host has seen of each session ---- */
struct sess {
	uint32_t id;
	unsigned char *out; /* stdout and stderr in arrival order, from offset base */
	size_t len, cap;
	uint64_t base; /* offset of out[0] */
	unsigned char s1[4096], s2[4096];
	size_t n1, n2;
	uint64_t max_end; /* highest offset + length seen */
	bool exited;
	int code, sig;
};

struct host {
	int fd;
	bool autoack;
	uint32_t next_id;
	struct sess s[MAX_SESS];
	int n;
};

static struct sess *sess_get(struct host *h, uint32_t id)
{
	for (int i = 0; i < h->n; i++)
		if (h->s[i].id == id)
			return &h->s[i];
	CHECK(h->n < MAX_SESS);
	struct sess *s = &h->s[h->n++];
	memset(s, 0, sizeof(*s));
	s->id = id;
	return s;
}

static void ack(struct host *h, uint32_t id, uint64_t off)
{
	struct pmsg m;
	CHECK(pmsg_init(&m, PK_EVENT, OP_PROC_ACK, 0) == 0);
	prec_set_uint(&m, &m.body, "session", id);
	prec_set_uint(&m, &m.body, "offset", off);
	send_msg(h->fd, &m);
}

static void on_event(struct host *h, const struct pmsg *m)
{
	uint64_t id = 0, off = 0, v = 0;
	prec_uint(&m->body, "session", &id);
	prec_uint(&m->body, "offset", &off);
	struct sess *s = sess_get(h, (uint32_t)id);
	if (m->op->id == OP_PROC_OUTPUT) {
		size_t n;
		const unsigned char *d = prec_bin(&m->body, "data", &n);
		CHECK(d && n > 0 && n <= 4096);
		CHECK(!s->exited);
		/* in order, nothing missing, nothing twice (after a hello it restarts at base) */
		CHECK_EQ(off, s->base + s->len);
		if (s->len + n > s->cap) {
			s->cap = (s->len + n) * 2;
			s->out = realloc(s->out, s->cap);
			CHECK(s->out);
		}
		memcpy(s->out + s->len, d, n);
		s->len += n;
		if (off + n > s->max_end)
			s->max_end = off + n;
		prec_uint(&m->body, "stream", &v);
		CHECK(v == 1 || v == 2);
		unsigned char *dst = v == 1 ? s->s1 : s->s2;
		size_t *dn = v == 1 ? &s->n1 : &s->n2;
		size_t k = n < sizeof(s->s1) - *dn ? n : sizeof(s->s1) - *dn;
		memcpy(dst + *dn, d, k);
		*dn += k;
		if (h->autoack)
			ack(h, s->id, off + n);
	} else if (m->op->id == OP_PROC_EXIT) {
		CHECK(!s->exited);
		CHECK_EQ(off, s->base + s->len); /* the exit follows all of the output */
		s->exited = true;
		prec_uint(&m->body, "code", &v);
		s->code = (int)v;
		v = 0;
		prec_uint(&m->body, "signal", &v);
		s->sig = (int)v;
	} else {
		CHECK(!"unexpected event");
	}
}

/* Read one message within ms; events go to the sessions. 1 = a reply in *out (caller frees),
 * 2 = an event, 0 = nothing within ms. */
static int next_msg(struct host *h, int ms, struct pmsg *out)
{
	struct pollfd p = {.fd = h->fd, .events = POLLIN};
	struct perr e;
	struct pmsg m;

	if (poll(&p, 1, ms) == 0)
		return 0;
	int rc = stream_recv_msg(h->fd, &m, &e);
	CHECK_EQ(rc, 1);
	if (e.code != PE_OK)
		fprintf(stderr, "bad message from the agent: %s\n", e.msg);
	CHECK_EQ(e.code, PE_OK);
	if (m.kind == PK_REPLY) {
		*out = m;
		return 1;
	}
	CHECK_EQ(m.kind, PK_EVENT);
	on_event(h, &m);
	pmsg_free(&m);
	return 2;
}

/* Wait for the reply to request id (events in between are handled). Returns its error code. */
static int wait_reply(struct host *h, uint32_t id, struct pmsg *out)
{
	struct pmsg r;
	for (;;) {
		int k = next_msg(h, WAIT_MS, &r);
		CHECK(k != 0);
		if (k == 1) {
			CHECK_EQ(r.id, id);
			int code = r.err_code;
			if (out)
				*out = r;
			else
				pmsg_free(&r);
			return code;
		}
	}
}

static void hello(struct host *h, struct pmsg *rep)
{
	struct pmsg m;
	char mark[AGENT_SYNC_MARKER_LEN];
	uint32_t id = ++h->next_id;

	CHECK(pmsg_init(&m, PK_REQUEST, OP_AGENT_HELLO, id) == 0);
	send_msg(h->fd, &m);
	read_exact(h->fd, mark, sizeof(mark));
	CHECK(memcmp(mark, AGENT_SYNC_MARKER, AGENT_SYNC_MARKER_LEN) == 0);
	/* the reply comes right after the marker, before any output */
	struct pmsg r;
	CHECK_EQ(next_msg(h, WAIT_MS, &r), 1);
	CHECK_EQ(r.id, id);
	CHECK_EQ(r.err_code, PE_OK);
	CHECK(r.op->id == OP_AGENT_HELLO);
	if (rep)
		*rep = r;
	else
		pmsg_free(&r);
}

struct start {
	const char *kind;
	const char *image; /* run: a reference already in the store (no load) */
	const char *const *argv;
	const char *const *env;
	bool tty, in;
	unsigned rows, cols;
	const char *const *strs;  /* more string fields: name, value, name, value, ..., NULL */
	const char *const *lists; /* one string list field: its name, then its elements */
	const char *flag;	  /* one boolean field set true */
};

static int start(struct host *h, uint32_t sid, const struct start *st)
{
	struct pmsg m;
	uint32_t id = ++h->next_id;

	CHECK(pmsg_init(&m, PK_REQUEST, OP_PROC_START, id) == 0);
	prec_set_uint(&m, &m.body, "session", sid);
	prec_set_str(&m, &m.body, "kind", st->kind ? st->kind : "vm");
	if (st->image)
		prec_set_str(&m, &m.body, "image", st->image);
	for (int i = 0; st->argv && st->argv[i]; i++)
		CHECK(prec_add_str(&m, &m.body, "argv", st->argv[i]) == 0);
	if (!st->argv || !st->argv[0]) {
		/* an empty list still has to be present: add one, then take it back */
		const struct pval *v = prec_get(&m.body, "argv");
		if (!v) {
			CHECK(prec_add_str(&m, &m.body, "argv", "x") == 0);
			struct pval *pv = (struct pval *)prec_get(&m.body, "argv");
			pv->list.n = 0;
		}
	}
	for (int i = 0; st->env && st->env[i]; i++)
		CHECK(prec_add_str(&m, &m.body, "env", st->env[i]) == 0);
	if (st->tty)
		prec_set_bool(&m, &m.body, "tty", true);
	if (st->in)
		prec_set_bool(&m, &m.body, "stdin", true);
	if (st->rows)
		prec_set_uint(&m, &m.body, "rows", st->rows);
	if (st->cols)
		prec_set_uint(&m, &m.body, "cols", st->cols);
	for (int i = 0; st->strs && st->strs[i]; i += 2)
		prec_set_str(&m, &m.body, st->strs[i], st->strs[i + 1]);
	for (int i = 1; st->lists && st->lists[i]; i++)
		CHECK(prec_add_str(&m, &m.body, st->lists[0], st->lists[i]) == 0);
	if (st->flag)
		prec_set_bool(&m, &m.body, st->flag, true);
	send_msg(h->fd, &m);
	return wait_reply(h, id, NULL);
}

static int start_vm(struct host *h, uint32_t sid, const char *const *argv)
{
	struct start st = {.argv = argv};
	return start(h, sid, &st);
}

static void input(struct host *h, uint32_t sid, const void *d, size_t n, bool eof)
{
	struct pmsg m;
	CHECK(pmsg_init(&m, PK_EVENT, OP_PROC_INPUT, 0) == 0);
	prec_set_uint(&m, &m.body, "session", sid);
	if (n)
		prec_set_bin(&m, &m.body, "data", d, n);
	if (eof)
		prec_set_bool(&m, &m.body, "eof", true);
	send_msg(h->fd, &m);
}

static void sess_event(struct host *h, enum proto_op op, uint32_t sid, const char *f1, uint64_t v1, const char *f2,
		       uint64_t v2)
{
	struct pmsg m;
	CHECK(pmsg_init(&m, PK_EVENT, op, 0) == 0);
	prec_set_uint(&m, &m.body, "session", sid);
	if (f1)
		prec_set_uint(&m, &m.body, f1, v1);
	if (f2)
		prec_set_uint(&m, &m.body, f2, v2);
	send_msg(h->fd, &m);
}

static struct sess *wait_exit(struct host *h, uint32_t sid)
{
	struct sess *s = sess_get(h, sid);
	struct pmsg r;
	while (!s->exited) {
		int k = next_msg(h, WAIT_MS, &r);
		if (k == 0)
			fprintf(stderr, "session %u: no exit (%zu bytes so far)\n", sid, s->len);
		CHECK(k == 2);
	}
	return s;
}

static bool has_text(const struct sess *s, const char *text)
{
	return s->len > 0 && memmem(s->out, s->len, text, strlen(text)) != NULL;
}

/* The container's state as the agent reports it. */
static void health_get(struct host *h, struct pmsg *r)
{
	struct pmsg m;
	uint32_t id = ++h->next_id;
	CHECK(pmsg_init(&m, PK_REQUEST, OP_AGENT_HEALTH, id) == 0);
	send_msg(h->fd, &m);
	CHECK_EQ(wait_reply(h, id, r), PE_OK);
}

/* Poll until the state is want, bounded by the clock (3 x WAIT_MS: the fake podman is a
 * shell script, slow to start on a host busy with VMs; once seen taking over 20 s in CI). */
static void health_until(struct host *h, const char *want)
{
	uint64_t deadline = now_mono_ms() + 3 * WAIT_MS;
	while (now_mono_ms() < deadline) {
		struct pmsg r;
		health_get(h, &r);
		bool ok = strcmp(prec_str(&r.body, "container"), want) == 0;
		pmsg_free(&r);
		if (ok)
			return;
		usleep(10000);
	}
	CHECK(!"the container never reached the state");
}

static void health(struct host *h, const char *want, int exit_code)
{
	struct pmsg r;
	uint64_t v;
	health_get(h, &r);
	CHECK_STR(prec_str(&r.body, "container"), want);
	CHECK(prec_uint(&r.body, "uptime_ms", &v));
	if (exit_code >= 0) {
		CHECK(prec_uint(&r.body, "exit_code", &v));
		CHECK_EQ(v, exit_code);
	}
	pmsg_free(&r);
}

static void host_forget(struct host *h)
{
	for (int i = 0; i < h->n; i++)
		free(h->s[i].out);
	h->n = 0;
}

static pid_t agent_up(struct host *h, const char *image)
{
	memset(h, 0, sizeof(*h));
	h->autoack = true;
	pid_t pid = spawn_agent(&h->fd, NULL, image);
	hello(h, NULL);
	return pid;
}

/* Closing our end makes an --exit-on-eof agent leave with 0. */
static void agent_down(struct host *h, pid_t pid)
{
	int st;
	host_forget(h);
	close(h->fd);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(hello_reply_and_marker)
{
	struct host h = {.autoack = true};
	struct pmsg r;
	pid_t pid = spawn_agent(&h.fd, NULL, NULL);
	hello(&h, &r);
	uint64_t up, ready;
	CHECK_STR(prec_str(&r.body, "version"), FCVM_VERSION);
	CHECK_STR(prec_str(&r.body, "container"), "none");
	CHECK(prec_uint(&r.body, "uptime_ms", &up) && prec_uint(&r.body, "ready_ms", &ready));
	CHECK(ready <= up);
	pmsg_free(&r);
	/* a second hello on the same connection: marker and reply again */
	hello(&h, NULL);
	health(&h, "none", -1);
	agent_down(&h, pid);
}

TEST(vm_echo_and_exit_codes)
{
	struct host h;
	pid_t pid = agent_up(&h, NULL);
	const char *echo[] = {"sh", "-c", "echo hi", NULL};
	const char *seven[] = {"sh", "-c", "exit 7", NULL};
	const char *missing[] = {"/nonexistent/program", NULL};
	CHECK_EQ(start_vm(&h, 1, echo), PE_OK);
	struct sess *s = wait_exit(&h, 1);
	CHECK_EQ(s->len, 3);
	CHECK(memcmp(s->out, "hi\n", 3) == 0);
	CHECK_EQ(s->n1, 3);
	CHECK_EQ(s->code, 0);
	CHECK_EQ(s->sig, 0);
	CHECK_EQ(start_vm(&h, 2, seven), PE_OK);
	s = wait_exit(&h, 2);
	CHECK_EQ(s->code, 7);
	CHECK_EQ(s->len, 0);
	CHECK_EQ(start_vm(&h, 3, missing), PE_OK);
	s = wait_exit(&h, 3);
	CHECK_EQ(s->code, 127);
	CHECK(s->n2 > 0 && s->n1 == 0);
	agent_down(&h, pid);
}

TEST(vm_env_added_to_defaults)
{
	struct host h;
	pid_t pid = agent_up(&h, NULL);
	const char *argv[] = {"sh", "-c", "printf '%s|%s|%s|%s' \"$FOO\" \"$HOME\" \"$TERM\" \"$PATH\"", NULL};
	const char *env[] = {"FOO=bar baz", "HOME=/home/x", NULL};
	struct start st = {.argv = argv, .env = env};
	CHECK_EQ(start(&h, 1, &st), PE_OK);
	struct sess *s = wait_exit(&h, 1);
	const char *want = "bar baz|/home/x||/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	CHECK_EQ(s->len, strlen(want));
	CHECK(memcmp(s->out, want, s->len) == 0);
	/* the command is looked up in its own PATH, not the agent's */
	const char *sh[] = {"sh", "-c", "true", NULL};
	const char *nopath[] = {"PATH=/nonexistent", NULL};
	struct start st2 = {.argv = sh, .env = nopath};
	CHECK_EQ(start(&h, 2, &st2), PE_OK);
	CHECK_EQ(wait_exit(&h, 2)->code, 127);
	agent_down(&h, pid);
}

TEST(stdout_stderr_binary_exact)
{
	struct host h;
	pid_t pid = agent_up(&h, NULL);
	char f1[1025], f2[1025];
	for (int i = 0; i < 256; i++) {
		snprintf(f1 + 4 * i, 5, "\\%03o", i);
		snprintf(f2 + 4 * i, 5, "\\%03o", 255 - i);
	}
	const char *argv[] = {"sh", "-c", "printf \"$1\"; printf \"$2\" >&2", "sh", f1, f2, NULL};
	CHECK_EQ(start_vm(&h, 9, argv), PE_OK);
	struct sess *s = wait_exit(&h, 9);
	CHECK_EQ(s->code, 0);
	CHECK_EQ(s->n1, 256);
	CHECK_EQ(s->n2, 256);
	for (int i = 0; i < 256; i++) {
		CHECK_EQ(s->s1[i], i);
		CHECK_EQ(s->s2[i], 255 - i);
	}
	CHECK_EQ(s->len, 512);
	agent_down(&h, pid);
}

static void check_pattern(const unsigned char *p, size_t n, uint64_t off)
{
	static const unsigned char pat[] = PATTERN;
	for (size_t i = 0; i < n; i++) {
		uint64_t at = off + i;
		if (p[i] != pat[at % PAT_LEN]) {
			fprintf(stderr, "byte %llu differs\n", (unsigned long long)at);
			CHECK(0);
		}
	}
}

static const char *const big_argv[] = {"sh", "-c", "yes abcdefghijklmnopqrstuvwxyz0123456789 | head -c 1048576", NULL};

TEST(interleaved_tiny_writes)
{
	struct host h;
	pid_t pid = agent_up(&h, NULL);
	const char *argv[] = {"sh", "-c", "i=0; while [ $i -lt 1500 ]; do printf a; printf b >&2; i=$((i+1)); done",
			      NULL};
	CHECK_EQ(start_vm(&h, 1, argv), PE_OK);
	struct sess *s = wait_exit(&h, 1);
	CHECK_EQ(s->code, 0);
	CHECK_EQ(s->len, 3000);
	for (size_t i = 0; i < s->len; i++)
		CHECK(s->out[i] == 'a' || s->out[i] == 'b');
	CHECK_EQ(memchr(s->s1, 'b', s->n1) == NULL, 1);
	CHECK_EQ(memchr(s->s2, 'a', s->n2) == NULL, 1);
	agent_down(&h, pid);
}

TEST(big_output_with_acks)
{
	struct host h;
	pid_t pid = agent_up(&h, NULL);
	CHECK_EQ(start_vm(&h, 1, big_argv), PE_OK);
	struct sess *s = wait_exit(&h, 1);
	CHECK_EQ(s->code, 0);
	CHECK_EQ(s->len, BIG_BYTES);
	check_pattern(s->out, s->len, 0);
	agent_down(&h, pid);
}

TEST(window_stops_without_acks)
{
	struct host h;
	struct pmsg r;
	pid_t pid = agent_up(&h, NULL);
	h.autoack = false;
	CHECK_EQ(start_vm(&h, 1, big_argv), PE_OK);
	struct sess *s = sess_get(&h, 1);
	/* take everything the agent sends until it goes quiet: exactly the window */
	while (s->len < WINDOW)
		CHECK_EQ(next_msg(&h, WAIT_MS, &r), 2);
	CHECK_EQ(next_msg(&h, 300, &r), 0);
	CHECK_EQ(s->len, WINDOW);
	CHECK_EQ(s->max_end, WINDOW);
	CHECK(!s->exited);
	/* half an ack lets half a window through, no more */
	ack(&h, 1, WINDOW / 2);
	while (s->len < WINDOW + WINDOW / 2)
		CHECK_EQ(next_msg(&h, WAIT_MS, &r), 2);
	CHECK_EQ(next_msg(&h, 300, &r), 0);
	CHECK_EQ(s->max_end, WINDOW + WINDOW / 2);
	h.autoack = true;
	ack(&h, 1, s->len);
	wait_exit(&h, 1);
	CHECK_EQ(s->len, BIG_BYTES);
	check_pattern(s->out, s->len, 0);
	CHECK_EQ(s->code, 0);
	agent_down(&h, pid);
}

TEST(stdin_and_eof)
{
	struct host h;
	pid_t pid = agent_up(&h, NULL);
	const char *cat[] = {"cat", NULL};
	struct start st = {.argv = cat, .in = true};
	unsigned char bin[300];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 13);
	CHECK_EQ(start(&h, 4, &st), PE_OK);
	input(&h, 4, "hello\n", 6, false);
	input(&h, 4, bin, sizeof(bin), false);
	input(&h, 4, NULL, 0, true);
	struct sess *s = wait_exit(&h, 4);
	CHECK_EQ(s->code, 0);
	CHECK_EQ(s->len, 6 + sizeof(bin));
	CHECK(memcmp(s->out, "hello\n", 6) == 0);
	CHECK(memcmp(s->out + 6, bin, sizeof(bin)) == 0);
	/* without stdin the process reads /dev/null: cat ends at once */
	CHECK_EQ(start_vm(&h, 5, cat), PE_OK);
	s = wait_exit(&h, 5);
	CHECK_EQ(s->code, 0);
	CHECK_EQ(s->len, 0);
	agent_down(&h, pid);
}

TEST(tty_and_resize)
{
	struct host h;
	pid_t pid = agent_up(&h, NULL);
	if (access("/dev/pts/ptmx", F_OK) != 0)
		SKIP("no devpts");
	const char *tty[] = {"tty", NULL};
	struct start st = {.argv = tty, .tty = true};
	CHECK_EQ(start(&h, 1, &st), PE_OK);
	struct sess *s = wait_exit(&h, 1);
	CHECK_EQ(s->code, 0);
	CHECK(s->len > 9 && memcmp(s->out, "/dev/pts/", 9) == 0);
	CHECK_EQ(s->n2, 0); /* a pty session has stream 1 only */

	const char *sz[] = {"sh", "-c", "stty size; read x; stty size; echo \"[$TERM]\"", NULL};
	struct start st2 = {.argv = sz, .tty = true, .in = true, .rows = 30, .cols = 100};
	CHECK_EQ(start(&h, 2, &st2), PE_OK);
	s = sess_get(&h, 2);
	struct pmsg r;
	while (!has_text(s, "30 100\r\n"))
		CHECK_EQ(next_msg(&h, WAIT_MS, &r), 2);
	sess_event(&h, OP_PROC_RESIZE, 2, "rows", 50, "cols", 132);
	input(&h, 2, "\n", 1, false);
	wait_exit(&h, 2);
	CHECK(has_text(s, "50 132\r\n"));
	CHECK(has_text(s, "[xterm]"));
	CHECK_EQ(s->code, 0);

	/* eof on a pty: the terminal's EOF character ends cat */
	const char *cat[] = {"cat", NULL};
	struct start st3 = {.argv = cat, .tty = true, .in = true};
	CHECK_EQ(start(&h, 3, &st3), PE_OK);
	input(&h, 3, "abc\n", 4, true);
	s = wait_exit(&h, 3);
	CHECK_EQ(s->code, 0);
	CHECK(has_text(s, "abc"));
	agent_down(&h, pid);
}

TEST(signals)
{
	struct host h;
	pid_t pid = agent_up(&h, NULL);
	const char *slp[] = {"sleep", "100", NULL};
	CHECK_EQ(start_vm(&h, 1, slp), PE_OK);
	CHECK_EQ(start_vm(&h, 2, slp), PE_OK);
	sess_event(&h, OP_PROC_SIGNAL, 1, "signal", SIGTERM, NULL, 0);
	sess_event(&h, OP_PROC_SIGNAL, 2, "signal", SIGKILL, NULL, 0);
	struct sess *s = wait_exit(&h, 1);
	CHECK_EQ(s->code, 143);
	CHECK_EQ(s->sig, SIGTERM);
	s = wait_exit(&h, 2);
	CHECK_EQ(s->code, 137);
	CHECK_EQ(s->sig, SIGKILL);
	/* with a pty the signal goes to the process group: the shell's child dies too */
	const char *grp[] = {"sh", "-c", "sleep 100; echo survived", NULL};
	struct start st = {.argv = grp, .tty = true};
	CHECK_EQ(start(&h, 3, &st), PE_OK);
	sess_event(&h, OP_PROC_SIGNAL, 3, "signal", SIGKILL, NULL, 0);
	s = wait_exit(&h, 3);
	CHECK_EQ(s->code, 137);
	CHECK(!has_text(s, "survived"));

	/* releasing a running session kills it and frees its number, with no exit reported */
	CHECK_EQ(start_vm(&h, 4, slp), PE_OK);
	sess_event(&h, OP_PROC_RELEASE, 4, NULL, 0, NULL, 0);
	int rc = PE_EXISTS;
	for (int i = 0; i < 2000 && rc == PE_EXISTS; i++) {
		const char *echo[] = {"echo", "again", NULL};
		rc = start_vm(&h, 4, echo);
		if (rc == PE_EXISTS) {
			struct pollfd none = {.fd = -1};
			poll(&none, 1, 5); /* the kill is being reaped: bounded retry */
		}
	}
	CHECK_EQ(rc, PE_OK);
	s = wait_exit(&h, 4);
	CHECK_EQ(s->code, 0);
	CHECK_EQ(s->len, 6);
	CHECK(memcmp(s->out, "again\n", 6) == 0);
	agent_down(&h, pid);
}

TEST(many_sessions_at_once)
{
	struct host h;
	pid_t pid = agent_up(&h, NULL);
	char names[8][16];
	for (int i = 0; i < 8; i++) {
		snprintf(names[i], sizeof(names[i]), "s%d", i);
		const char *argv[] = {"sh", "-c", "for i in 1 2 3 4 5; do echo $0-$i; done; exit $#", names[i], NULL};
		CHECK_EQ(start_vm(&h, (uint32_t)(100 + i), argv), PE_OK);
	}
	for (int i = 0; i < 8; i++) {
		struct sess *s = wait_exit(&h, (uint32_t)(100 + i));
		char want[128];
		snprintf(want, sizeof(want), "%s-1\n%s-2\n%s-3\n%s-4\n%s-5\n", names[i], names[i], names[i], names[i],
			 names[i]);
		CHECK_EQ(s->len, strlen(want));
		CHECK(memcmp(s->out, want, s->len) == 0);
		CHECK_EQ(s->code, 0);
	}
	agent_down(&h, pid);
}

TEST(reconnect_retransmits_unacked)
{
	char sock[PATH_MAX + 16];
	struct host h = {0};
	struct pmsg r;
	make_tmpdir();
	snprintf(sock, sizeof(sock), "%s/agent.sock", tmpdir);
	pid_t pid = spawn_agent(NULL, sock, NULL);
	h.fd = connect_listen(sock);
	hello(&h, NULL);
	const char *done[] = {"sh", "-c", "echo done", NULL};
	CHECK_EQ(start_vm(&h, 2, done), PE_OK);
	CHECK_EQ(start_vm(&h, 1, big_argv), PE_OK);
	struct sess *s = sess_get(&h, 1), *d = sess_get(&h, 2);
	while (s->len < 100000 || !d->exited)
		CHECK_EQ(next_msg(&h, WAIT_MS, &r), 2);
	CHECK(memcmp(d->out, "done\n", 5) == 0);
	/* acknowledge an odd offset in the middle of a chunk, then vanish */
	uint64_t acked = 12345;
	ack(&h, 1, acked);
	health(&h, "none", -1); /* frames are handled in order: the ack is in */
	close(h.fd);
	host_forget(&h);

	/* a new connection: the agent resends from the ack, and session 2's output and exit */
	memset(&h, 0, sizeof(h));
	h.fd = connect_listen(sock);
	s = sess_get(&h, 1);
	d = sess_get(&h, 2);
	s->base = acked;
	hello(&h, NULL);
	h.autoack = true;
	wait_exit(&h, 2);
	CHECK_EQ(d->len, 5);
	CHECK(memcmp(d->out, "done\n", 5) == 0);
	CHECK_EQ(d->code, 0);
	wait_exit(&h, 1);
	CHECK_EQ(s->base + s->len, BIG_BYTES);
	check_pattern(s->out, s->len, acked);
	CHECK_EQ(s->code, 0);

	/* released sessions are forgotten: a third connection gets nothing for them */
	sess_event(&h, OP_PROC_RELEASE, 1, NULL, 0, NULL, 0);
	sess_event(&h, OP_PROC_RELEASE, 2, NULL, 0, NULL, 0);
	health(&h, "none", -1); /* a round trip: the releases are done */
	close(h.fd);
	host_forget(&h);
	memset(&h, 0, sizeof(h));
	h.fd = connect_listen(sock);
	hello(&h, NULL);
	CHECK_EQ(next_msg(&h, 300, &r), 0);
	/* and the numbers are free again */
	CHECK_EQ(start_vm(&h, 1, done), PE_OK);
	CHECK(wait_exit(&h, 1)->code == 0);
	close(h.fd);
	host_forget(&h);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(sock);
	rmdir(tmpdir);
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

TEST(run_and_exec_with_fake_podman)
{
	char image[PATH_MAX + 16], gate[PATH_MAX + 32];
	struct host h;
	struct pmsg r;
	make_tmpdir();
	snprintf(image, sizeof(image), "%s/image.tar", tmpdir);
	snprintf(gate, sizeof(gate), "%s.gate", image);
	write_file(image, "not really a tar");
	write_file(gate, "");
	pid_t pid = agent_up(&h, image);

	const char *ls[] = {"ls", "-l", NULL};
	struct start ex = {.kind = "exec", .argv = ls};
	CHECK_EQ(start(&h, 5, &ex), PE_NOT_FOUND); /* no container yet */

	const char *argv[] = {"echo", "x y", NULL};
	const char *env[] = {"A=B", NULL};
	struct start run = {.kind = "run", .argv = argv, .env = env, .in = true};
	CHECK_EQ(start(&h, 1, &run), PE_OK);
	health(&h, "loading", -1); /* podman load waits for the gate */
	CHECK_EQ(start(&h, 5, &ex), PE_NOT_FOUND);
	CHECK_EQ(start(&h, 2, &run), PE_EXISTS); /* once per VM */
	unlink(gate);
	struct sess *s = sess_get(&h, 1);
	const char *want = "run --name fcvm --network=none --cidfile CID -i -e A=B localhost/x:latest echo x y\n";
	while (s->n1 < strlen(want))
		CHECK_EQ(next_msg(&h, WAIT_MS, &r), 2);
	CHECK_EQ(s->n1, strlen(want));
	CHECK(memcmp(s->s1, want, s->n1) == 0);
	char loaded[PATH_MAX + 32];
	snprintf(loaded, sizeof(loaded), "%s.loaded", image);
	CHECK(access(loaded, F_OK) == 0); /* fake-podman's mark of a load */
	unlink(loaded);
	health_until(&h, "running"); /* once `podman wait --condition=running` says so */

	const char *env2[] = {"X=1", NULL};
	struct start ex2 = {.kind = "exec", .argv = ls, .env = env2, .tty = true};
	CHECK_EQ(start(&h, 5, &ex2), PE_OK);
	struct sess *e = wait_exit(&h, 5);
	CHECK(has_text(e, "exec -t -e X=1 fcvm ls -l\r\n"));
	CHECK_EQ(e->code, 0);

	/* the fake container copies its stdin to stderr and exits 3 at EOF */
	input(&h, 1, "in\n", 3, true);
	wait_exit(&h, 1);
	CHECK_EQ(s->code, 3);
	CHECK_EQ(s->n2, 3);
	CHECK(memcmp(s->s2, "in\n", 3) == 0);
	health(&h, "exited", 3);
	CHECK_EQ(start(&h, 6, &ex), PE_NOT_FOUND);
	CHECK_EQ(start(&h, 7, &run), PE_EXISTS);
	agent_down(&h, pid);
	unlink(image);
	rmdir(tmpdir);
}

/* podman run's and podman exec's options reach podman as single --NAME=VALUE arguments (a
 * value is never taken for an option of its own); outside a guest exec is always podman's */
TEST(run_and_exec_options_reach_podman)
{
	struct host h;
	struct pmsg r;
	pid_t pid = agent_up(&h, NULL);
	const char *argv[] = {"sh", NULL};
	const char *strs[] = {"workdir", "/w", "user", "1:2", "hostname", "h1", "entrypoint", "--volume=/:/x", NULL};
	const char *labels[] = {"labels", "a=b", "c=-d", NULL};
	struct start run = {.kind = "run",
			    .image = "localhost/fcvm-demo:latest",
			    .argv = argv,
			    .strs = strs,
			    .lists = labels,
			    .flag = "read_only",
			    .in = true}; /* the fake container lives until its stdin ends */
	CHECK_EQ(start(&h, 1, &run), PE_OK);
	struct sess *s = sess_get(&h, 1);
	const char *want =
	    "run --name fcvm --network=none --cidfile CID -i --workdir=/w --user=1:2 --hostname=h1 "
	    "--entrypoint=--volume=/:/x --label=a=b --label=c=-d --read-only localhost/fcvm-demo:latest sh\n";
	while (s->n1 < strlen(want))
		CHECK_EQ(next_msg(&h, WAIT_MS, &r), 2);
	CHECK(s->n1 == strlen(want) && memcmp(s->s1, want, s->n1) == 0);
	health_until(&h, "running");

	const char *ls[] = {"ls", NULL};
	const char *xstrs[] = {"workdir", "/tmp", "user", "nobody", NULL};
	struct start ex = {.kind = "exec", .argv = ls, .strs = xstrs, .flag = "privileged"};
	CHECK_EQ(start(&h, 5, &ex), PE_OK);
	struct sess *e = wait_exit(&h, 5);
	CHECK(has_text(e, "exec -w /tmp -u nobody --privileged fcvm ls\n"));
	input(&h, 1, "", 0, true);
	wait_exit(&h, 1);
	agent_down(&h, pid);
}

/* image: a reference already in the guest's store (the pre-loaded demo) is run as is, with
 * no podman load of the image disk (the disk is there, its load would wait on the gate). */
TEST(run_stored_image_skips_load)
{
	char image[PATH_MAX + 16], gate[PATH_MAX + 32], loaded[PATH_MAX + 32];
	struct host h;
	struct pmsg r;
	make_tmpdir();
	snprintf(image, sizeof(image), "%s/image.tar", tmpdir);
	snprintf(gate, sizeof(gate), "%s.gate", image);
	snprintf(loaded, sizeof(loaded), "%s.loaded", image);
	write_file(image, "not really a tar");
	write_file(gate, "");
	pid_t pid = agent_up(&h, image);

	const char *argv[] = {"echo", "hi", NULL};
	struct start run = {.kind = "run", .image = "localhost/fcvm-demo:latest", .argv = argv};
	CHECK_EQ(start(&h, 1, &run), PE_OK);
	struct sess *s = sess_get(&h, 1);
	const char *want = "run --name fcvm --network=none --cidfile CID localhost/fcvm-demo:latest echo hi\n";
	while (s->n1 < strlen(want))
		CHECK_EQ(next_msg(&h, WAIT_MS, &r), 2);
	CHECK_EQ(s->n1, strlen(want));
	CHECK(memcmp(s->s1, want, s->n1) == 0);
	wait_exit(&h, 1);
	CHECK_EQ(s->code, 3);
	health(&h, "exited", 3);
	CHECK(access(loaded, F_OK) < 0 && errno == ENOENT); /* no podman load ran */
	CHECK_EQ(start(&h, 2, &run), PE_EXISTS);
	agent_down(&h, pid);
	unlink(gate);
	unlink(image);
	rmdir(tmpdir);
}

TEST(run_load_failure_is_125)
{
	struct host h;
	pid_t pid = agent_up(&h, "/nonexistent/image.tar");
	const char *none[] = {NULL};
	struct start run = {.kind = "run", .argv = none};
	CHECK_EQ(start(&h, 1, &run), PE_OK);
	struct sess *s = wait_exit(&h, 1);
	CHECK_EQ(s->code, 125);
	CHECK_EQ(s->n1, 0);
	CHECK(s->n2 > 0);
	CHECK(memmem(s->s2, s->n2, "podman load failed", 18) != NULL);
	CHECK(memmem(s->s2, s->n2, "/nonexistent/image.tar", 22) != NULL);
	health(&h, "exited", 125);
	agent_down(&h, pid);

	pid = agent_up(&h, NULL); /* no image disk at all */
	CHECK_EQ(start(&h, 1, &run), PE_OK);
	s = wait_exit(&h, 1);
	CHECK_EQ(s->code, 125);
	CHECK(memmem(s->s2, s->n2, "no image", 8) != NULL);
	agent_down(&h, pid);
}

/* A proc_start with session 0, packed by hand: our own encoder refuses it. */
static void send_session0(int fd, uint32_t id)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 6);
	msgpack_pack_uint32(&pk, PROTO_VERSION);
	msgpack_pack_uint32(&pk, PK_REQUEST);
	msgpack_pack_str_with_body(&pk, "proc_start", 10);
	msgpack_pack_uint32(&pk, id);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "session", 7);
	msgpack_pack_uint32(&pk, 0);
	msgpack_pack_str_with_body(&pk, "kind", 4);
	msgpack_pack_str_with_body(&pk, "vm", 2);
	msgpack_pack_str_with_body(&pk, "argv", 4);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_str_with_body(&pk, "true", 4);
	msgpack_pack_nil(&pk);
	CHECK_EQ(stream_write_frame(fd, sb.data, sb.size), 0);
	msgpack_sbuffer_destroy(&sb);
}

TEST(bad_requests)
{
	struct host h;
	pid_t pid = agent_up(&h, NULL);
	send_session0(h.fd, 77);
	CHECK_EQ(wait_reply(&h, 77, NULL), PE_INVALID);
	const char *slp[] = {"sleep", "100", NULL};
	CHECK_EQ(start_vm(&h, 1, slp), PE_OK);
	CHECK_EQ(start_vm(&h, 1, slp), PE_EXISTS);
	struct start bad = {.kind = "vmm", .argv = slp};
	CHECK_EQ(start(&h, 2, &bad), PE_INVALID);
	const char *none[] = {NULL};
	CHECK_EQ(start_vm(&h, 2, none), PE_INVALID);
	struct start ex = {.kind = "exec", .argv = slp};
	CHECK_EQ(start(&h, 2, &ex), PE_NOT_FOUND);
	/* events for unknown sessions are dropped quietly; the agent still answers */
	sess_event(&h, OP_PROC_SIGNAL, 999, "signal", 9, NULL, 0);
	health(&h, "none", -1);
	/* an invalid frame length: the agent treats the host as gone (here: exits) */
	unsigned char junk[8] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4};
	CHECK(write(h.fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
	char c;
	wait_readable(h.fd);
	CHECK(read(h.fd, &c, 1) == 0);
	agent_down(&h, pid);
}

TEST(shutdown_in_test_mode)
{
	struct host h;
	struct pmsg m;
	int st;
	pid_t pid = agent_up(&h, NULL);
	const char *slp[] = {"sleep", "100", NULL};
	CHECK_EQ(start_vm(&h, 1, slp), PE_OK);
	CHECK(pmsg_init(&m, PK_REQUEST, OP_AGENT_SHUTDOWN, 50) == 0);
	send_msg(h.fd, &m);
	CHECK_EQ(wait_reply(&h, 50, NULL), PE_OK);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(h.fd);
	host_forget(&h);
}

/* With the guest's NIC configured the container shares it: a published port reaches it. */
TEST(run_with_guest_network_is_host_network)
{
	struct host h;
	struct pmsg r;
	agent_net_host = true;
	pid_t pid = agent_up(&h, NULL);
	const char *argv[] = {"true", NULL};
	struct start run = {.kind = "run", .image = "localhost/fcvm-demo:latest", .argv = argv};
	CHECK_EQ(start(&h, 1, &run), PE_OK);
	struct sess *s = sess_get(&h, 1);
	const char *want = "run --name fcvm --network=host --cidfile CID localhost/fcvm-demo:latest true\n";
	while (s->n1 < strlen(want))
		CHECK_EQ(next_msg(&h, WAIT_MS, &r), 2);
	CHECK_EQ(s->n1, strlen(want));
	CHECK(memcmp(s->s1, want, s->n1) == 0);
	wait_exit(&h, 1);
	agent_down(&h, pid);
}

/* ---- the guest's interface configuration (--net-config), in a network namespace of the
 * test's own: root only; the namespace and its veth pair vanish with the test's process. ---- */

#define GUEST_MAC "02:fc:00:00:00:02"
static const char guest_spec[] = "10.254.254.2/30,10.254.254.1," GUEST_MAC ",10.0.2.3";

static void enter_test_netns(void)
{
	if (geteuid() != 0)
		SKIP("needs root (a network namespace and a veth pair)");
	if (unshare(CLONE_NEWNET) < 0)
		SKIP("unshare(CLONE_NEWNET) refused");
	if (system("command -v ip >/dev/null") != 0)
		SKIP("no ip command");
	/* the peer is made first: it gets the lower index, so "first non-lo" would pick it */
	if (system("ip link add fcvmt0 address " GUEST_MAC " type veth peer name fcvmt1 2>/dev/null") != 0)
		SKIP("no veth support");
}

static void read_text(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	ssize_t k = read(fd, buf, n - 1);
	CHECK(k >= 0);
	buf[k] = 0;
	close(fd);
}

/* Run the agent with args (NULL-terminated) after its path; its stdout and stderr into out and
 * err; the exit status, bounded by WAIT_MS. */
static int run_agent_net(const char *const *args, char *out, size_t outlen, char *err, size_t errlen)
{
	char bin[PATH_MAX], opath[PATH_MAX + 8], epath[PATH_MAX + 8];
	const char *argv[16];
	int n = 0, st;

	agent_path(bin, sizeof(bin));
	snprintf(opath, sizeof(opath), "%s/out", tmpdir);
	snprintf(epath, sizeof(epath), "%s/err", tmpdir);
	argv[n++] = bin;
	for (; *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int o = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600),
		    e = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		execv(bin, (char **)argv);
		_exit(127);
	}
	pid_t w = 0;
	for (int i = 0; i < WAIT_MS / 10 && (w = waitpid(pid, &st, WNOHANG)) == 0; i++)
		usleep(10000);
	if (w != pid) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		CHECK(!"fcvm-agent --net-config hung");
	}
	read_text(opath, out, outlen);
	read_text(epath, err, errlen);
	unlink(opath);
	unlink(epath);
	CHECK(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* `ip -j ...`, parsed */
static json_t *ip_json(const char *args)
{
	char cmd[256], buf[16384];
	size_t len = 0;
	snprintf(cmd, sizeof(cmd), "ip -j %s", args);
	FILE *f = popen(cmd, "r");
	CHECK(f);
	while (len < sizeof(buf) - 1 && !feof(f) && !ferror(f))
		len += fread(buf + len, 1, sizeof(buf) - 1 - len, f);
	buf[len] = 0;
	CHECK_EQ(pclose(f), 0);
	json_error_t jerr;
	json_t *j = json_loads(buf, 0, &jerr);
	CHECK(j && json_is_array(j));
	return j;
}

static bool json_strs_have(const json_t *arr, const char *want)
{
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const json_t *v = json_array_get(arr, i);
		if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
			return true;
	}
	return false;
}

static bool link_up(const char *ifname)
{
	char args[64];
	snprintf(args, sizeof(args), "link show dev %s", ifname);
	json_t *j = ip_json(args);
	bool up = json_strs_have(json_object_get(json_array_get(j, 0), "flags"), "UP");
	json_decref(j);
	return up;
}

/* The interface's IPv4 address as "A/P", or "" */
static void if_inet(const char *ifname, char *out, size_t n)
{
	char args[64];
	snprintf(args, sizeof(args), "addr show dev %s", ifname);
	json_t *j = ip_json(args);
	out[0] = 0;
	const json_t *info = json_object_get(json_array_get(j, 0), "addr_info");
	for (size_t i = 0; i < json_array_size(info); i++) {
		const json_t *a = json_array_get(info, i);
		if (strcmp(json_string_value(json_object_get(a, "family")), "inet") == 0)
			snprintf(out, n, "%s/%lld", json_string_value(json_object_get(a, "local")),
				 (long long)json_integer_value(json_object_get(a, "prefixlen")));
	}
	json_decref(j);
}

TEST(net_config_by_mac)
{
	char out[256], err[1024], inet[64], text[512], path[PATH_MAX + 16];
	enter_test_netns();
	make_tmpdir();
	const char *args[] = {"--net-config", guest_spec, "--net-etc", tmpdir, NULL};
	int rc = run_agent_net(args, out, sizeof(out), err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "agent: %s", err);
	CHECK_EQ(rc, 0);
	CHECK_STR(out, "fcvmt0\n"); /* the MAC's interface, not the first one */
	if_inet("fcvmt0", inet, sizeof(inet));
	CHECK_STR(inet, "10.254.254.2/30");
	CHECK(link_up("fcvmt0"));
	CHECK(link_up("lo"));
	if_inet("fcvmt1", inet, sizeof(inet));
	CHECK_STR(inet, "");
	CHECK(!link_up("fcvmt1"));

	json_t *routes = ip_json("route show default");
	CHECK_EQ(json_array_size(routes), 1);
	json_t *def = json_array_get(routes, 0);
	CHECK_STR(json_string_value(json_object_get(def, "gateway")), "10.254.254.1");
	CHECK_STR(json_string_value(json_object_get(def, "dev")), "fcvmt0");
	json_decref(routes);

	snprintf(path, sizeof(path), "%s/resolv.conf", tmpdir);
	read_text(path, text, sizeof(text));
	CHECK_STR(text, "nameserver 10.0.2.3\n");
	unlink(path);
	snprintf(path, sizeof(path), "%s/hosts", tmpdir);
	read_text(path, text, sizeof(text));
	CHECK(strstr(text, "127.0.0.1\tlocalhost\n") && strstr(text, "10.254.254.2\tfcvm\n"));
	unlink(path);
	rmdir(tmpdir);
}

TEST(net_config_named_interface)
{
	char out[256], err[1024], inet[64];
	enter_test_netns();
	make_tmpdir();
	/* the MAC matches no interface: --net-if decides (the guest would take the first non-lo) */
	const char *args[] = {"--net-config", "192.168.7.9/24,192.168.7.1,02:00:00:00:00:99", "--net-if", "fcvmt1",
			      NULL};
	CHECK_EQ(run_agent_net(args, out, sizeof(out), err, sizeof(err)), 0);
	CHECK_STR(out, "fcvmt1\n");
	if_inet("fcvmt1", inet, sizeof(inet));
	CHECK_STR(inet, "192.168.7.9/24");
	CHECK(link_up("fcvmt1"));
	json_t *routes = ip_json("route show default");
	CHECK_EQ(json_array_size(routes), 1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(routes, 0), "gateway")), "192.168.7.1");
	json_decref(routes);
	/* none: nothing but lo */
	const char *none[] = {"--net-config", "none", "--net-if", "fcvmt0", NULL};
	CHECK_EQ(run_agent_net(none, out, sizeof(out), err, sizeof(err)), 0);
	if_inet("fcvmt0", inet, sizeof(inet));
	CHECK_STR(inet, "");
	rmdir(tmpdir);
}

TEST(net_config_malformed_is_refused)
{
	static const char *const bad[] = {
	    "",
	    "10.254.254.2",
	    "10.254.254.2/30,10.254.254.1",
	    "10.254.254.2/30,10.254.254.1,02:fc:00:00:00:02,10.0.2.3,x",
	    "10.254.254.2,10.254.254.1,02:fc:00:00:00:02",
	    "10.254.254.2/33,10.254.254.1,02:fc:00:00:00:02",
	    "10.254.254.2/0,10.254.254.1,02:fc:00:00:00:02",
	    "10.254.254.2/+3,10.254.254.1,02:fc:00:00:00:02",
	    "10.254.254.2/ 3,10.254.254.1,02:fc:00:00:00:02",
	    "10.254.254/30,10.254.254.1,02:fc:00:00:00:02",
	    "10.254.254.256/30,10.254.254.1,02:fc:00:00:00:02",
	    "10.254.254.2/30,10.254.254.5,02:fc:00:00:00:02", /* gateway off the subnet */
	    "10.254.254.2/30,10.254.254.2,02:fc:00:00:00:02", /* gateway is the address */
	    "10.254.254.2/30,10.254.254.1,02:fc:00:00:00",
	    "10.254.254.2/30,10.254.254.1,02:fc:00:00:00:0g",
	    "10.254.254.2/30,10.254.254.1,02-fc-00-00-00-02",
	    "10.254.254.2/30,10.254.254.1,02:fc:00:00:00:02,10.0.2",
	    "10.254.254.2/30,10.254.254.1,02:fc:00:00:00:02,",
	    "10.254.254.2/30,,10.254.254.1,02:fc:00:00:00:02",
	};
	char out[256], err[1024], inet[64];
	enter_test_netns();
	make_tmpdir();
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		const char *args[] = {"--net-config", bad[i], "--net-if", "fcvmt0", "--net-etc", tmpdir, NULL};
		int rc = run_agent_net(args, out, sizeof(out), err, sizeof(err));
		if (rc != 1 || !strstr(err, "fcvm.net=") || !strstr(err, "want ADDR/PREFIX,GW,MAC[,DNS]"))
			fprintf(stderr, "spec \"%s\": exit %d, stderr: %s\n", bad[i], rc, err);
		CHECK_EQ(rc, 1);
		CHECK(strstr(err, "fcvm.net=") && strstr(err, "want ADDR/PREFIX,GW,MAC[,DNS]"));
		CHECK_STR(out, "");
	}
	/* nothing was touched */
	if_inet("fcvmt0", inet, sizeof(inet));
	CHECK_STR(inet, "");
	CHECK(!link_up("fcvmt0"));
	CHECK(!link_up("lo"));
	json_t *routes = ip_json("route show default");
	CHECK_EQ(json_array_size(routes), 0);
	json_decref(routes);
	CHECK(rmdir(tmpdir) == 0); /* no resolv.conf or hosts written */
}
