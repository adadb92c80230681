/* fcvm-uffdd as built, under its own filter, serving clients that do exactly Firecracker's side
 * of the handshake (tests/unit/uffd_client.h): every byte the guests read is the memory file's,
 * holes and removed pages read as zeros, ten clients at once, a client killed mid-fault, uffdd
 * killed under a client, forged handshakes refused and audited, the working set prefetched.
 * Each test has its own directory, uffdd and process group, all removed when it ends
 * (timeouts included). Runs as root and unprivileged (only user-mode faults then). */
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "tests/unit/check.h"
#include "tests/unit/uffd_client.h"

static char dir[64], logpath[96], filepath[96];
static struct uc_uffdd ud;
static int memfd = -1;
static volatile sig_atomic_t setup_timed_out;

static void on_alarm(int sig)
{
	(void)sig;
	setup_timed_out = 1;
}

static void sock_path(char *buf, size_t len, const char *vm)
{
	snprintf(buf, len, "%s/%s.sock", dir, vm);
}

/* A directory, a memory file of pages pages, a uffdd; the test goes on in a child of its own
 * process group, and this process cleans up after it however it ends. */
static void setup(uint64_t pages)
{
	snprintf(dir, sizeof(dir), "/tmp/sbx_uffdd.XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(logpath, sizeof(logpath), "%s/uffdd.log", dir);
	snprintf(filepath, sizeof(filepath), "%s/mem", dir);
	memfd = uc_make_file(filepath, pages);
	CHECK(memfd >= 0);
	if (uc_uffdd_start(&ud, logpath) < 0) {
		check_sh("rm -rf %s", dir);
		SKIP("build/fcvm-uffdd not built");
	}
	fflush(NULL);
	pid_t body = fork();
	CHECK(body >= 0);
	if (body == 0) {
		setpgid(0, 0);
		return;
	}
	struct sigaction sa = {.sa_handler = on_alarm};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL); /* check.h's alarm: clean up, then fail */
	int st = 0;
	while (waitpid(body, &st, 0) < 0 && errno == EINTR && !setup_timed_out)
		;
	kill(-body, SIGKILL);
	kill(body, SIGKILL);
	kill(ud.pid, SIGKILL);
	waitpid(ud.pid, NULL, 0);
	if (setup_timed_out || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		check_sh("echo '---- uffdd log'; tail -n 30 %s", logpath);
	check_sh("rm -rf %s", dir);
	if (setup_timed_out) {
		fprintf(stderr, "timed out\n");
		_exit(1);
	}
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

static bool log_has(const char *s)
{
	char buf[65536];
	int fd = open(logpath, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, s) != NULL;
}

/* Is there a line in the log with both a and b? */
static bool log_line_has(const char *a, const char *b)
{
	char buf[65536];
	int fd = open(logpath, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, a) && strstr(line, b))
			return true;
	return false;
}

/* Poll (every 2 ms, at most ms) until cond holds. */
#define WAIT_FOR(cond, ms)                                                                                             \
	do {                                                                                                           \
		uint64_t _end = uc_now_ns() + (uint64_t)(ms)*1000000ull;                                               \
		while (!(cond) && uc_now_ns() < _end)                                                                  \
			usleep(2000);                                                                                  \
		if (!(cond)) {                                                                                         \
			fprintf(stderr, "%s:%d: not within %d ms: %s\n", __FILE__, __LINE__, (int)(ms), #cond);        \
			_exit(1);                                                                                      \
		}                                                                                                      \
	} while (0)

static int stats_code(const char *vm)
{
	struct pmsg rep;
	int rc = uc_vm_op(ud.chan, OP_UFFD_STATS, vm, &rep);
	pmsg_free(&rep);
	return rc;
}

static bool state_is(const char *vm, const char *want)
{
	char s[32];
	return strcmp(uc_state(ud.chan, vm, s, sizeof(s)), want) == 0;
}

/* ---- clients: forked, each waits for its go before it connects (uffd_serve names its pid first) ---- */

struct client {
	pid_t pid;
	int go;	   /* write a byte: go on */
	int ready; /* it writes a byte when it got to where it waits next */
};

static void client_wait(int fd)
{
	char c;
	if (read(fd, &c, 1) != 1)
		_exit(3);
}

static void client_signal(int fd)
{
	if (write(fd, "r", 1) != 1)
		_exit(3);
}

static struct client spawn(void (*fn)(int go, int ready, void *arg), void *arg)
{
	int g[2], r[2];
	struct client c;
	CHECK(pipe2(g, O_CLOEXEC) == 0 && pipe2(r, O_CLOEXEC) == 0);
	fflush(NULL);
	c.pid = fork();
	CHECK(c.pid >= 0);
	if (c.pid == 0) {
		close(g[1]);
		close(r[0]);
		client_wait(g[0]);
		fn(g[0], r[1], arg);
		_exit(0);
	}
	close(g[0]);
	close(r[1]);
	c.go = g[1];
	c.ready = r[0];
	return c;
}

static void go(const struct client *c)
{
	CHECK(write(c->go, "g", 1) == 1);
}

static void wait_ready(const struct client *c)
{
	struct pollfd p = {.fd = c->ready, .events = POLLIN};
	char b;
	CHECK(poll(&p, 1, 20000) == 1 && read(c->ready, &b, 1) == 1);
}

static int reap(const struct client *c)
{
	int st = 0;
	CHECK(waitpid(c->pid, &st, 0) == c->pid);
	close(c->go);
	close(c->ready);
	return st;
}

static void serve_client(const char *vm, const char *key, const struct client *c)
{
	char path[160];
	struct pmsg rep;
	sock_path(path, sizeof(path), vm);
	int ls = uc_listen(path);
	CHECK(ls >= 0);
	CHECK_EQ(uc_serve(ud.chan, vm, key, c->pid, ls, memfd, &rep), PE_OK);
	pmsg_free(&rep);
	close(ls);
}

struct verify_args {
	char vm[32];
	uint64_t pages;
	unsigned nreg, threads;
	bool remove; /* then MADV_DONTNEED some pages: they must read as zeros */
};

struct toucher {
	const struct uc_vm *v;
	uint64_t pages;
	unsigned t, n;
	bool bad;
};

static void *touch(void *arg)
{
	struct toucher *t = arg;
	for (uint64_t p = t->t; p < t->pages; p += t->n)
		if (!uc_page_ok(t->v, p, p % 16 == 5)) {
			fprintf(stderr, "page %llu: not the memory file's\n", (unsigned long long)p);
			t->bad = true;
		}
	return NULL;
}

static void verify_client(int g, int r, void *arg)
{
	struct verify_args *a = arg;
	struct uc_vm v;
	char path[160];
	pthread_t th[16];
	struct toucher t[16];
	(void)g;
	(void)r;
	sock_path(path, sizeof(path), a->vm);
	if (uc_vm_start(&v, path, a->pages, a->nreg) < 0) {
		fprintf(stderr, "%s: handshake: %s\n", a->vm, strerror(errno));
		_exit(2);
	}
	uint64_t pages = v.size / UC_PAGE;
	for (unsigned i = 0; i < a->threads; i++) {
		t[i] = (struct toucher){.v = &v, .pages = pages, .t = i, .n = a->threads};
		if (pthread_create(&th[i], NULL, touch, &t[i]) != 0)
			_exit(2);
	}
	bool bad = false;
	for (unsigned i = 0; i < a->threads; i++) {
		pthread_join(th[i], NULL);
		bad |= t[i].bad;
	}
	if (bad)
		_exit(1);
	if (a->remove) {
		/* the balloon's madvise: uffdd gets UFFD_EVENT_REMOVE; a refault is a zero page */
		if (madvise(v.mem + 8 * UC_PAGE, 32 * UC_PAGE, MADV_DONTNEED) < 0)
			_exit(2);
		for (uint64_t p = 8; p < 40; p++)
			if (!uc_page_ok(&v, p, true)) {
				fprintf(stderr, "page %llu: not zero after its removal\n", (unsigned long long)p);
				_exit(1);
			}
		for (uint64_t p = 40; p < 48; p++)
			if (!uc_page_ok(&v, p, p % 16 == 5))
				_exit(1);
	}
	_exit(0);
}

TEST(serves_every_byte_holes_and_removes)
{
	setup(2048);
	struct verify_args a = {.vm = "v1", .pages = 2048, .nreg = 3, .threads = 8, .remove = true};
	struct client c = spawn(verify_client, &a);
	serve_client("v1", "snap1", &c);
	go(&c);
	int st = reap(&c);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* 2046 pages in 3 regions of 682; 128 of them holes; 32 removed, then zero */
	WAIT_FOR(state_is("v1", "gone"), 5000);
	CHECK(uc_stat(ud.chan, "v1", "faults") >= 2046 + 32);
	CHECK(uc_stat(ud.chan, "v1", "copied") >= 2046 - 128);
	CHECK(uc_stat(ud.chan, "v1", "zero") >= 128 + 32);
	CHECK(uc_stat(ud.chan, "v1", "removes") >= 1);
	CHECK_EQ(uc_stat(ud.chan, "v1", "removed"), 32);
	CHECK_EQ(uc_stat(ud.chan, "v1", "prefetched"), 0);
	CHECK(log_has("VM v1: serving its VMM"));
	CHECK(log_has("VM v1: its VMM is gone"));
}

TEST(ten_clients_on_one_uffdd)
{
	setup(1024);
	struct client c[10];
	struct verify_args a[10];
	for (int i = 0; i < 10; i++) {
		a[i] = (struct verify_args){.pages = 1024, .nreg = 2, .threads = 4, .remove = i % 2 == 0};
		snprintf(a[i].vm, sizeof(a[i].vm), "c%d", i);
		c[i] = spawn(verify_client, &a[i]);
		/* one snapshot: later clones prefetch what earlier ones recorded, while they fault */
		serve_client(a[i].vm, "one", &c[i]);
	}
	for (int i = 0; i < 10; i++)
		go(&c[i]);
	for (int i = 0; i < 10; i++) {
		int st = reap(&c[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fprintf(stderr, "client %d: status 0x%x\n", i, st);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	for (int i = 0; i < 10; i++)
		WAIT_FOR(state_is(a[i].vm, "gone"), 5000);
}

/* Touch every page, remove them all, again, until killed. */
static void endless_client(int g, int r, void *arg)
{
	struct uc_vm v;
	char path[160];
	(void)g;
	sock_path(path, sizeof(path), arg);
	if (uc_vm_start(&v, path, 8192, 1) < 0)
		_exit(2);
	for (int round = 0;; round++) {
		for (uint64_t p = 0; p < 8192; p++)
			if (!uc_page_ok(&v, p, round > 0 || p % 16 == 5))
				_exit(1);
		if (round == 0)
			client_signal(r);
		madvise(v.mem, v.size, MADV_DONTNEED);
	}
}

TEST(client_killed_mid_fault_others_served)
{
	setup(8192);
	struct client k = spawn(endless_client, "doomed");
	serve_client("doomed", "s", &k);
	go(&k);
	wait_ready(&k);
	WAIT_FOR(uc_stat(ud.chan, "doomed", "faults") > 9000, 10000);
	CHECK(kill(k.pid, SIGKILL) == 0);
	int st = reap(&k);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	WAIT_FOR(state_is("doomed", "gone"), 5000);
	/* uffdd serves on */
	struct verify_args a = {.vm = "next", .pages = 8192, .nreg = 2, .threads = 4};
	struct client c = spawn(verify_client, &a);
	serve_client("next", "s", &c);
	go(&c);
	st = reap(&c);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(kill(ud.pid, 0) == 0);
}

/* What a VMM sees when uffdd dies under it. keep_uffd: as Firecracker, which holds its uffd
 * for its whole life; otherwise it closes its copy after the handshake, and uffdd's was the
 * last one. Exit 0: as expected; the INFO line says what happened. */
struct orphan_args {
	bool keep_uffd;
};

struct one_touch {
	const struct uc_vm *v;
	uint64_t page;
	volatile int done; /* 1: read zeros, 2: read the file's bytes */
};

static void *touch_one(void *arg)
{
	struct one_touch *t = arg;
	t->done = uc_page_ok(t->v, t->page, true) ? 1 : 2;
	return NULL;
}

static void orphan_client(int g, int r, void *arg)
{
	const struct orphan_args *a = arg;
	struct uc_vm v;
	char path[160];
	sock_path(path, sizeof(path), "orphan");
	if (uc_vm_start(&v, path, 1024, 1) < 0)
		_exit(2);
	for (uint64_t p = 0; p < 16; p++)
		if (!uc_page_ok(&v, p, p % 16 == 5))
			_exit(1);
	if (!a->keep_uffd)
		close(v.uffd);
	client_signal(r);
	client_wait(g); /* uffdd is dead now */
	/* the handshake socket says so at once: that is how a VMM (or fcvm) can know */
	struct pollfd p = {.fd = v.sock, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1 || !(p.revents & (POLLHUP | POLLIN))) {
		fprintf(stderr, "no hang-up on the handshake socket\n");
		_exit(4);
	}
	struct one_touch t = {.v = &v, .page = 100};
	pthread_t th;
	if (pthread_create(&th, NULL, touch_one, &t) != 0)
		_exit(2);
	for (int i = 0; i < 250 && !t.done; i++)
		usleep(2000);
	if (a->keep_uffd) {
		if (t.done) {
			fprintf(stderr, "a fault completed with uffdd dead (%s)\n", t.done == 1 ? "zeros" : "data");
			_exit(5);
		}
		printf("INFO: uffdd killed, the VMM holding its uffd: the handshake socket hangs up; a fault blocks "
		       "(500 ms and still waiting) rather than reading zeros\n");
	} else {
		if (t.done != 1) {
			fprintf(stderr, "expected the orphaned range to read zeros, got %d\n", t.done);
			_exit(6);
		}
		printf("INFO: uffdd killed holding the uffd's last reference: the range is plain anonymous memory; "
		       "the fault read zeros (silent corruption but for the hang-up)\n");
	}
	fflush(stdout);
	_exit(0); /* a thread blocked in a fault ends with the process */
}

static void uffdd_killed(bool keep_uffd)
{
	setup(1024);
	struct orphan_args a = {.keep_uffd = keep_uffd};
	struct client c = spawn(orphan_client, &a);
	serve_client("orphan", "o", &c);
	go(&c);
	wait_ready(&c);
	CHECK(kill(ud.pid, SIGKILL) == 0);
	/* dead once its channel hangs up (it is the setup's child, reaped there) */
	struct pollfd p = {.fd = ud.chan, .events = POLLIN};
	CHECK(poll(&p, 1, 5000) == 1);
	go(&c);
	int st = reap(&c);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(uffdd_killed_vmm_keeping_uffd_blocks_not_zeros)
{
	uffdd_killed(true);
}

TEST(uffdd_killed_last_uffd_reference_reads_zeros)
{
	uffdd_killed(false);
}

/* ---- forged handshakes: the VMM (this process, as uffd_serve names it) sends garbage ---- */

static int forged(const char *vm, const char *json, const int *fds, int nfds, const char *reason)
{
	char path[160], want[256];
	struct pmsg rep;
	sock_path(path, sizeof(path), vm);
	int ls = uc_listen(path);
	CHECK(ls >= 0);
	CHECK_EQ(uc_serve(ud.chan, vm, "forged", getpid(), ls, memfd, &rep), PE_OK);
	pmsg_free(&rep);
	close(ls);
	int s = uc_connect(path);
	CHECK(s >= 0);
	CHECK(uc_send(s, json, strlen(json), fds, nfds) == 0);
	WAIT_FOR(state_is(vm, "failed"), 5000);
	snprintf(want, sizeof(want), "audit: VM %s: refused the handshake of its VMM (pid %d): ", vm, (int)getpid());
	WAIT_FOR(log_line_has(want, reason), 2000);
	CHECK(uc_vm_op(ud.chan, OP_UFFD_STATS, vm, &rep) == 0);
	CHECK(prec_str(&rep.body, "why") && strstr(prec_str(&rep.body, "why"), reason));
	pmsg_free(&rep);
	/* this process is the "VMM": it lives, so stopping waits until it is gone */
	CHECK(uc_vm_op(ud.chan, OP_UFFD_STOP, vm, &rep) == 0);
	bool pending = false;
	CHECK(prec_bool(&rep.body, "pending", &pending) && pending);
	pmsg_free(&rep);
	close(s);
	return 0;
}

static void region_json(char *buf, size_t len, uint64_t base, uint64_t size, uint64_t off, uint64_t base2,
			uint64_t size2, uint64_t off2)
{
	snprintf(buf, len,
		 "[{\"base_host_virt_addr\":%llu,\"size\":%llu,\"offset\":%llu,\"page_size\":4096},"
		 "{\"base_host_virt_addr\":%llu,\"size\":%llu,\"offset\":%llu,\"page_size\":4096}]",
		 (unsigned long long)base, (unsigned long long)size, (unsigned long long)off, (unsigned long long)base2,
		 (unsigned long long)size2, (unsigned long long)off2);
}

TEST(forged_handshakes_refused_and_audited)
{
	setup(256); /* 1 MiB */
	int u = uc_userfaultfd();
	if (u < 0)
		SKIP("no userfaultfd for this process");
	char j[512];
	const uint64_t B = 0x7f0000000000ull, M = 1u << 20;
	int two[2] = {u, u};
	forged("f1", "[{\"base_host_virt_addr\":1", &u, 1, "'}' or ',' expected in a region");
	forged("f2", "{\"base_host_virt_addr\":0}", &u, 1, "not a JSON array");
	region_json(j, sizeof(j), B, M / 2, 0, B + M, M, M / 2); /* past the file's end */
	forged("f3", j, &u, 1, "outside the memory file");
	region_json(j, sizeof(j), B, M / 2, 0, B + M / 4, M / 2, M / 2);
	forged("f4", j, &u, 1, "overlap in the VMM's memory");
	region_json(j, sizeof(j), B, M / 2, 0, B + M, M / 2, M / 4);
	forged("f5", j, &u, 1, "overlap in the memory file");
	region_json(j, sizeof(j), B + 100, M / 2, 0, B + M, M / 2, M / 2);
	forged("f6", j, &u, 1, "not page-aligned");
	forged("f7", "[{\"base_host_virt_addr\":139637976727552,\"size\":4096,\"offset\":0,\"page_size\":2097152}]", &u,
	       1, "page size 2097152");
	int ev = eventfd(0, EFD_CLOEXEC);
	region_json(j, sizeof(j), B, M / 2, 0, B + M, M / 2, M / 2);
	forged("f8", j, &ev, 1, "the fd is not a userfaultfd");
	forged("f9", j, &memfd, 1, "not a userfaultfd (not an anonymous inode)");
	int raw = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | (geteuid() ? UFFD_USER_MODE_ONLY : 0));
	CHECK(raw >= 0);
	forged("f10", j, &raw, 1, "has not been set up (UFFDIO_API)");
	forged("f11", j, two, 2, "2 fds with the regions");
	forged("f12", j, NULL, 0, "0 fds with the regions");
	forged("f13", "[{\"size\":4096,\"offset\":0}]", &u, 1, "without 'base_host_virt_addr'");
	forged("f14", "[{\"base_host_virt_addr\":0,\"base_host_virt_addr\":0,\"size\":1,\"offset\":0}]", &u, 1,
	       "twice in a region");
	/* uffdd serves on, for a real VMM */
	struct verify_args a = {.vm = "real", .pages = 256, .nreg = 1, .threads = 2};
	struct client c = spawn(verify_client, &a);
	serve_client("real", "forged", &c);
	go(&c);
	int st = reap(&c);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A peer that is not the VM's VMM is refused at once; the VMM still gets its handshake. */
TEST(peer_not_the_vmm_refused)
{
	setup(256);
	struct verify_args a = {.vm = "p", .pages = 256, .nreg = 1, .threads = 2};
	struct client c = spawn(verify_client, &a);
	serve_client("p", "k", &c);
	char path[160], want[160];
	sock_path(path, sizeof(path), "p");
	int u = uc_userfaultfd();
	int s = uc_connect(path);
	CHECK(s >= 0);
	static const char j[] = "[{\"base_host_virt_addr\":139637976727552,\"size\":4096,\"offset\":0}]";
	uc_send(s, j, sizeof(j) - 1, &u, u >= 0 ? 1 : 0);
	snprintf(want, sizeof(want), "audit: VM p: refused a connection from pid %d uid %u: not the VM's VMM",
		 (int)getpid(), (unsigned)getuid());
	WAIT_FOR(log_has(want), 5000);
	CHECK(state_is("p", "listening"));
	go(&c);
	int st = reap(&c);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* and a second connection once it is served is refused too */
	close(s);
}

/* ---- the working set ---- */

static bool in_set(uint64_t p)
{
	return p % 7 == 0 || (p >= 1000 && p < 1300);
}

struct ws_args {
	const char *vm;
	bool second;
};

static void ws_client(int g, int r, void *arg)
{
	const struct ws_args *a = arg;
	struct uc_vm v;
	char path[160];
	sock_path(path, sizeof(path), a->vm);
	if (uc_vm_start(&v, path, 4096, 2) < 0)
		_exit(2);
	if (a->second) {
		client_signal(r);
		client_wait(g); /* until uffdd has prefetched */
	}
	for (uint64_t p = 0; p < 4096; p++)
		if (in_set(p) && !uc_page_ok(&v, p, p % 16 == 5))
			_exit(1);
	if (a->second) {
		client_signal(r);
		client_wait(g);
		if (!uc_page_ok(&v, 1, false)) /* not in the set: a fault */
			_exit(1);
	}
	_exit(0);
}

TEST(working_set_recorded_then_prefetched)
{
	setup(4096);
	uint64_t want = 0;
	for (uint64_t p = 0; p < 4096; p++)
		want += in_set(p);
	struct ws_args a1 = {.vm = "first"}, a2 = {.vm = "second", .second = true};
	struct client c1 = spawn(ws_client, &a1);
	serve_client("first", "wsnap", &c1);
	go(&c1);
	int st = reap(&c1);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	WAIT_FOR(state_is("first", "gone"), 5000);
	CHECK_EQ(uc_stat(ud.chan, "first", "recorded"), want);

	/* from the disk this time (io_uring; unprivileged, without io-wq workers: pread) */
	CHECK(fdatasync(memfd) == 0 && posix_fadvise(memfd, 0, 0, POSIX_FADV_DONTNEED) == 0);
	struct client c2 = spawn(ws_client, &a2);
	char path[160];
	struct pmsg rep;
	sock_path(path, sizeof(path), "second");
	int ls = uc_listen(path);
	CHECK_EQ(uc_serve(ud.chan, "second", "wsnap", c2.pid, ls, memfd, &rep), PE_OK);
	uint64_t ws = 0;
	CHECK(prec_uint(&rep.body, "working_set", &ws) && ws == want);
	pmsg_free(&rep);
	close(ls);
	go(&c2);
	wait_ready(&c2);
	WAIT_FOR(uc_stat(ud.chan, "second", "prefetched") == want, 5000);
	go(&c2);
	wait_ready(&c2); /* it read the whole set */
	CHECK_EQ(uc_stat(ud.chan, "second", "faults"), 0);
	go(&c2);
	st = reap(&c2);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	WAIT_FOR(state_is("second", "gone"), 5000);
	CHECK_EQ(uc_stat(ud.chan, "second", "faults"), 1);
}

/* uffd_stop while the VMM runs: served on until it is gone, then forgotten. */
static void stop_client(int g, int r, void *arg)
{
	struct uc_vm v;
	char path[160];
	(void)arg;
	sock_path(path, sizeof(path), "st");
	if (uc_vm_start(&v, path, 512, 1) < 0)
		_exit(2);
	if (!uc_page_ok(&v, 0, false))
		_exit(1);
	client_signal(r);
	client_wait(g); /* stopped now */
	for (uint64_t p = 1; p < 512; p++)
		if (!uc_page_ok(&v, p, p % 16 == 5))
			_exit(1);
	_exit(0);
}

TEST(stop_waits_for_the_vmm)
{
	setup(512);
	struct client c = spawn(stop_client, NULL);
	serve_client("st", "k", &c);
	go(&c);
	wait_ready(&c);
	struct pmsg rep;
	CHECK_EQ(uc_vm_op(ud.chan, OP_UFFD_STOP, "st", &rep), PE_OK);
	bool pending = false;
	CHECK(prec_bool(&rep.body, "pending", &pending) && pending);
	pmsg_free(&rep);
	go(&c);
	int st = reap(&c);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	WAIT_FOR(stats_code("st") == PE_NOT_FOUND, 5000);
	/* one never connected to stops at once */
	struct client idle = spawn(stop_client, NULL);
	serve_client("idle", "k", &idle);
	CHECK_EQ(uc_vm_op(ud.chan, OP_UFFD_STOP, "idle", &rep), PE_OK);
	CHECK(!prec_has(&rep.body, "pending"));
	pmsg_free(&rep);
	kill(idle.pid, SIGKILL);
	reap(&idle);
}

/* What the supervisor hands over is checked again inside uffdd. */
TEST(serve_request_checked)
{
	setup(64);
	struct pmsg rep;
	int sp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	CHECK_EQ(uc_serve(ud.chan, "x", "k", getpid(), sp[0], memfd, &rep), PE_INVALID);
	CHECK(strstr(rep.err_msg, "not a listening"));
	pmsg_free(&rep);
	WAIT_FOR(log_has("audit: refused 'uffd_serve' for VM x: the socket is not a listening"), 2000);
	char path[160];
	sock_path(path, sizeof(path), "x");
	int ls = uc_listen(path);
	int wr = open(filepath, O_WRONLY | O_CLOEXEC);
	CHECK_EQ(uc_serve(ud.chan, "x", "k", getpid(), ls, wr, &rep), PE_INVALID);
	CHECK(strstr(rep.err_msg, "not open for reading"));
	pmsg_free(&rep);
	/* a VMM that is not running */
	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	CHECK_EQ(uc_serve(ud.chan, "x", "k", dead, ls, memfd, &rep), PE_NOT_FOUND);
	pmsg_free(&rep);
	CHECK_EQ(uc_serve(ud.chan, "x", "k", getpid(), ls, memfd, &rep), PE_OK);
	pmsg_free(&rep);
	CHECK_EQ(uc_serve(ud.chan, "x", "k", getpid(), ls, memfd, &rep), PE_EXISTS);
	pmsg_free(&rep);
	CHECK_EQ(uc_vm_op(ud.chan, OP_UFFD_STATS, "nope", &rep), PE_NOT_FOUND);
	pmsg_free(&rep);
	/* the supervisor may ask ping of it still */
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_PING, 9);
	CHECK_EQ(uc_call(ud.chan, &req, &rep), PE_OK);
	uint64_t secc = 0;
	CHECK(prec_uint(&rep.body, "seccomp", &secc) && secc == 2);
	pmsg_free(&rep);
	pmsg_free(&req);
}
