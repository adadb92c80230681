/* make bench: fcvm-uffdd (docs/uffdd.md), each figure beside a baseline measured in the same run.
 *   1. fault round trip, p50/p99: a thread touching pages one at a time, served by fcvm-uffdd
 *      (as built, under its filter) against a minimal handler thread in this process
 *      (poll, read, pread, UFFDIO_COPY: nothing else);
 *   2. memory file reads, io_uring (one batch) against pread (one call each): 4 KiB random
 *      pages and 1 MiB runs, page cache warm and cold;
 *   3. a recorded working set of 20000 pages: served one fault at a time against prefetched
 *      (time from the handshake until the guest has read all of it), and the prefetch's rate.
 * Usage: bench/uffd DIR (a directory for the memory file and the sockets). */
#include <math.h>
#include <pthread.h>
#include <signal.h>

#include "helpers/uffdd/reader.h"
#include "tests/unit/uffd_client.h"

static const char *dir;
static int memfd;
static struct uc_uffdd ud;

static void die(const char *what)
{
	fprintf(stderr, "bench/uffd: %s: %s\n", what, strerror(errno));
	if (ud.pid > 0)
		kill(ud.pid, SIGKILL);
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[(size_t)((double)(n - 1) * p)];
}

/* ---- a client: this process's own memory, as a VMM's ---- */

static void vm_start(struct uc_vm *v, const char *vm, const char *key, uint64_t pages, bool prefetch)
{
	char path[256];
	struct pmsg req, rep;
	snprintf(path, sizeof(path), "%s/%s.sock", dir, vm);
	int ls = uc_listen(path);
	if (ls < 0)
		die("listen");
	pmsg_init(&req, PK_REQUEST, OP_UFFD_SERVE, 1);
	prec_set_str(&req, &req.body, "vm", vm);
	prec_set_str(&req, &req.body, "key", key);
	prec_set_uint(&req, &req.body, "pid", (uint64_t)getpid());
	prec_set_bool(&req, &req.body, "prefetch", prefetch);
	pmsg_add_fd(&req, dup(ls));
	pmsg_add_fd(&req, dup(memfd));
	if (uc_call(ud.chan, &req, &rep) != 0)
		die(rep.err_msg ? rep.err_msg : "uffd_serve");
	pmsg_free(&req);
	pmsg_free(&rep);
	close(ls);
	if (uc_vm_start(v, path, pages, 1) < 0)
		die("handshake");
}

static void vm_end(struct uc_vm *v, const char *vm)
{
	struct pmsg rep;
	munmap(v->mem, v->size);
	close(v->uffd);
	close(v->sock);
	/* this process lives on: uffd_stop leaves it pending; its uffd is closed, so nothing is lost */
	uc_vm_op(ud.chan, OP_UFFD_STOP, vm, &rep);
	pmsg_free(&rep);
}

/* ---- the minimal handler: one thread, one page per fault ---- */

struct minimal {
	int uffd, stop;
	char *buf;
};

static void *minimal_handler(void *arg)
{
	struct minimal *m = arg;
	struct pollfd p[2] = {{.fd = m->uffd, .events = POLLIN}, {.fd = m->stop, .events = POLLIN}};
	struct uffd_msg msg;
	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return NULL;
		if (p[1].revents)
			return NULL;
		while (read(m->uffd, &msg, sizeof(msg)) == sizeof(msg)) {
			if (msg.event != UFFD_EVENT_PAGEFAULT)
				continue;
			uint64_t a = msg.arg.pagefault.address & ~(uint64_t)(UC_PAGE - 1);
			/* this bench's mapping starts at file offset 0 */
			uint64_t off = a - (uint64_t)(uintptr_t)m->buf;
			char page[UC_PAGE];
			if (pread(memfd, page, UC_PAGE, (off_t)off) != UC_PAGE)
				return NULL;
			struct uffdio_copy cp = {.dst = a, .src = (uintptr_t)page, .len = UC_PAGE};
			ioctl(m->uffd, UFFDIO_COPY, &cp);
		}
	}
}

/* Touch pages [0, n) one by one; each touch's time into ns. */
static void touch_timed(const char *mem, uint64_t n, uint64_t *ns)
{
	for (uint64_t p = 0; p < n; p++) {
		uint64_t t0 = uc_now_ns();
		(void)*(volatile const char *)(mem + p * UC_PAGE);
		ns[p] = uc_now_ns() - t0;
	}
}

static void fault_rtt(uint64_t n)
{
	uint64_t *a = calloc(n, sizeof(*a)), *b = calloc(n, sizeof(*b));
	struct uc_vm v;
	if (!a || !b)
		die("calloc");

	/* baseline: the minimal handler on a uffd of its own */
	char *mem = mmap(NULL, n * UC_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	int u = uc_userfaultfd();
	int stop[2];
	if (mem == MAP_FAILED || u < 0 || pipe(stop) < 0)
		die("minimal handler");
	struct uffdio_register reg = {.range = {.start = (uintptr_t)mem, .len = n * UC_PAGE},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (ioctl(u, UFFDIO_REGISTER, &reg) < 0)
		die("UFFDIO_REGISTER");
	struct minimal m = {.uffd = u, .stop = stop[0], .buf = mem};
	pthread_t th;
	pthread_create(&th, NULL, minimal_handler, &m);
	touch_timed(mem, n, a);
	(void)!write(stop[1], "x", 1);
	pthread_join(th, NULL);
	munmap(mem, n * UC_PAGE);
	close(u);

	/* fcvm-uffdd (no working set for this key: every page a fault) */
	vm_start(&v, "rtt", "rtt", n, false);
	touch_timed(v.mem, n, b);
	vm_end(&v, "rtt");

	uint64_t a50 = pct(a, n, 0.5), a99 = pct(a, n, 0.99), b50 = pct(b, n, 0.5), b99 = pct(b, n, 0.99);
	printf("%-34s %12s %12s %8s\n", "", "fcvm-uffdd", "minimal", "ratio");
	printf("%-34s %9.1f us %9.1f us %8.2f\n", "fault round trip p50", (double)b50 / 1e3, (double)a50 / 1e3,
	       (double)b50 / (double)a50);
	printf("%-34s %9.1f us %9.1f us %8.2f\n", "fault round trip p99", (double)b99 / 1e3, (double)a99 / 1e3,
	       (double)b99 / (double)a99);
	free(a);
	free(b);
}

/* ---- io_uring against pread ---- */

static double read_rate(enum reader_kind kind, uint64_t pages, uint32_t len, unsigned n, bool cold, unsigned seed)
{
	struct reader r;
	if (reader_init(&r, kind, 64) < 0)
		die("reader_init");
	struct rd_req *q = calloc(n, sizeof(*q));
	char *buf =
	    mmap(NULL, (size_t)n * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (!q || buf == MAP_FAILED)
		die("buffers");
	uint64_t span = pages * UC_PAGE / len;
	for (unsigned i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		q[i] = (struct rd_req){
		    .fd = memfd, .off = (uint64_t)(seed >> 4) % span * len, .len = len, .buf = buf + (size_t)i * len};
	}
	if (cold)
		posix_fadvise(memfd, 0, 0, POSIX_FADV_DONTNEED);
	uint64_t t0 = uc_now_ns();
	for (unsigned i = 0; i < n; i += 512)
		reader_run(&r, q + i, n - i < 512 ? n - i : 512);
	uint64_t t = uc_now_ns() - t0;
	for (unsigned i = 0; i < n; i++)
		if (q[i].res < 0)
			die("read");
	reader_free(&r);
	munmap(buf, (size_t)n * len);
	free(q);
	return (double)t / n;
}

static void readers(uint64_t pages)
{
	printf("%-34s %12s %12s %8s %12s\n", "memory file reads, batches of 512", "io_uring", "pread", "ratio",
	       "uffdd's mix");
	struct {
		const char *name;
		uint32_t len;
		unsigned n;
		bool cold;
	} c[] = {
	    {"4 KiB random, page cache warm", UC_PAGE, 20000, false},
	    {"4 KiB random, cold", UC_PAGE, 5000, true},
	    {"1 MiB runs, page cache warm", 1u << 20, 512, false},
	    {"1 MiB runs, cold", 1u << 20, 128, true},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		double u = read_rate(READER_URING_ONLY, pages, c[i].len, c[i].n, c[i].cold, 7);
		double p = read_rate(READER_PREAD, pages, c[i].len, c[i].n, c[i].cold, 7);
		double m = read_rate(READER_URING, pages, c[i].len, c[i].n, c[i].cold, 7);
		printf("%-34s %9.1f us %9.1f us %8.2f %9.1f us\n", c[i].name, u / 1e3, p / 1e3, u / p, m / 1e3);
	}
}

/* ---- a working set: one by one against prefetched ---- */

/* 20000 of 40000 pages: runs of 16 (64 KiB), as a guest's touched memory clusters */
static bool ws_page(uint64_t p)
{
	return p % 32 < 16;
}

static bool all_pages(uint64_t p)
{
	(void)p;
	return true;
}

static uint64_t touch_set(const char *mem, uint64_t pages, bool (*in)(uint64_t))
{
	uint64_t t0 = uc_now_ns();
	for (uint64_t p = 0; p < pages; p++)
		if (in(p))
			(void)*(volatile const char *)(mem + p * UC_PAGE);
	return uc_now_ns() - t0;
}

/* From the handshake until uffdd has placed the whole set of key (set pages). */
static void prefetch_rate(const char *what, const char *key, uint64_t set, uint64_t pages)
{
	static int n;
	char vm[32];
	struct uc_vm v;
	snprintf(vm, sizeof(vm), "pf%d", n++);
	uint64_t t0 = uc_now_ns();
	vm_start(&v, vm, key, pages, true);
	while (uc_stat(ud.chan, vm, "prefetched") < set && uc_now_ns() - t0 < 10000000000ull)
		;
	uint64_t pf = uc_now_ns() - t0;
	vm_end(&v, vm);
	printf("prefetch, %-24s %9.2f GB/s (%llu MiB in %.1f ms, handshake included)\n", what,
	       (double)(set * UC_PAGE) / ((double)pf), (unsigned long long)(set * UC_PAGE >> 20), (double)pf / 1e6);
}

static void working_set(uint64_t pages)
{
	struct uc_vm v;
	uint64_t set = 0;
	for (uint64_t p = 0; p < pages; p++)
		set += ws_page(p);

	/* the first clone records the set */
	vm_start(&v, "ws0", "ws", pages, true);
	touch_set(v.mem, pages, ws_page);
	vm_end(&v, "ws0");

	/* served one fault at a time (prefetch off) */
	uint64_t t0 = uc_now_ns();
	vm_start(&v, "ws1", "ws", pages, false);
	touch_set(v.mem, pages, ws_page);
	uint64_t one_by_one = uc_now_ns() - t0;
	vm_end(&v, "ws1");

	/* prefetched: the handshake, then the guest reads it, racing the prefetch */
	t0 = uc_now_ns();
	vm_start(&v, "ws2", "ws", pages, true);
	touch_set(v.mem, pages, ws_page);
	uint64_t prefetched = uc_now_ns() - t0;
	uint64_t faults = uc_stat(ud.chan, "ws2", "faults");
	vm_end(&v, "ws2");

	printf("%-34s %12s %12s %8s\n", "working set of 20000 pages", "prefetched", "one by one", "ratio");
	printf("%-34s %9.1f ms %9.1f ms %8.2f   (%llu of its faults left)\n", "handshake to all of it read",
	       (double)prefetched / 1e6, (double)one_by_one / 1e6, (double)prefetched / (double)one_by_one,
	       (unsigned long long)faults);
	prefetch_rate("the same set (64 KiB runs)", "ws", set, pages);

	/* the whole file as the set: 1 MiB runs */
	vm_start(&v, "all0", "all", pages, true);
	touch_set(v.mem, pages, all_pages);
	vm_end(&v, "all0");
	prefetch_rate("all 40000 pages (1 MiB runs)", "all", pages, pages);
}

int main(int argc, char **argv)
{
	char path[256], log[256];
	const uint64_t pages = 40000; /* 156 MiB; the working set is every other page */
	if (argc != 2) {
		fprintf(stderr, "usage: bench/uffd DIR\n");
		return 2;
	}
	dir = argv[1];
	snprintf(path, sizeof(path), "%s/uffd.mem", dir);
	snprintf(log, sizeof(log), "%s/uffdd.log", dir);
	if ((memfd = uc_make_file(path, pages)) < 0)
		die("memory file");
	if (uc_uffdd_start(&ud, log) < 0)
		die("fcvm-uffdd");
	fault_rtt(20000);
	printf("\n");
	readers(pages);
	printf("\n");
	working_set(pages);
	/* this process is every clone's "VMM": uffdd would serve it until it ends */
	kill(ud.pid, SIGKILL);
	waitpid(ud.pid, NULL, 0);
	return 0;
}
