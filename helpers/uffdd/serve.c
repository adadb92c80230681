/* uffdd.h: the clones, the handshake, fault serving, remove events, the working set and its
 * prefetch, in one poll loop (docs/uffdd.md). */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "proto/chan.h"
#include "common/log.h"
#include "common/util.h"
#include "helpers/uffdd/uffdd.h"

_Static_assert(UFFDD_READ_BYTES == UFFDD_READ_MSGS * sizeof(struct uffd_msg), "UFFDD_READ_BYTES");

/* ---- bitmaps over file pages ---- */

static uint64_t *bm_new(uint64_t bits)
{
	return calloc((bits + 63) / 64 ? (bits + 63) / 64 : 1, sizeof(uint64_t));
}
static bool bm_test(const uint64_t *b, uint64_t i)
{
	return (b[i / 64] >> (i % 64)) & 1;
}
static void bm_set(uint64_t *b, uint64_t i)
{
	b[i / 64] |= 1ull << (i % 64);
}
/* The first set bit at or after i, or n. */
static uint64_t bm_next(const uint64_t *b, uint64_t i, uint64_t n)
{
	while (i < n) {
		uint64_t w = b[i / 64] >> (i % 64);
		if (w)
			return i + (uint64_t)__builtin_ctzll(w) < n ? i + (uint64_t)__builtin_ctzll(w) : n;
		i = (i / 64 + 1) * 64;
	}
	return n;
}

const char *clone_state_name(enum clone_state s)
{
	static const char *const names[] = {"listening", "handshake", "serving", "gone", "failed"};
	return s <= C_FAILED ? names[s] : "unknown";
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ---- snapshots: the working set of each key ---- */

static void snap_clear(struct snap *s)
{
	free(s->ws);
	free(s->data);
	if (s->map && s->map != MAP_FAILED)
		munmap((void *)s->map, s->size);
	memset(s, 0, sizeof(*s));
}

static void snap_release(struct snap *s)
{
	if (!s || --s->refs > 0)
		return;
	if (!s->key[0]) { /* detached (its key was served from another file) and unreferenced */
		snap_clear(s);
		return;
	}
	/* no clone serves from it: its working set stays, its file does not (the mapping would
	 * hold a removed snapshot's file, and its disk space, until evicted) */
	munmap((void *)s->map, s->size);
	s->map = NULL;
}

/* Which pages of the file hold data: SEEK_DATA/SEEK_HOLE (a file system without them
 * reports all data, which is only slower). */
static void map_holes(struct snap *s, int fd, uint64_t page)
{
	off_t pos = 0;
	while ((uint64_t)pos < s->size) {
		off_t d = lseek(fd, pos, SEEK_DATA);
		if (d < 0) {
			if (errno != ENXIO) /* ENXIO: no data past pos */
				for (uint64_t i = (uint64_t)pos / page; i < s->npages; i++)
					bm_set(s->data, i);
			return;
		}
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > s->size)
			h = (off_t)s->size;
		for (uint64_t i = (uint64_t)d / page; i < ((uint64_t)h + page - 1) / page && i < s->npages; i++)
			bm_set(s->data, i);
		pos = h;
	}
}

static struct snap *snap_get(struct uffdd *u, const char *key, const struct stat *st, int fd)
{
	struct snap *free_slot = NULL, *lru = NULL;
	for (size_t i = 0; i < UFFDD_MAX_SNAPS; i++) {
		struct snap *s = &u->snaps[i];
		if (!s->used) {
			free_slot = free_slot ? free_slot : s;
			continue;
		}
		if (strcmp(s->key, key) == 0) {
			if (s->dev == st->st_dev && s->ino == st->st_ino && s->size == (uint64_t)st->st_size) {
				if (!s->map) {
					const char *m = mmap(NULL, s->size, PROT_READ, MAP_SHARED, fd, 0);
					if (m == MAP_FAILED)
						return NULL;
					s->map = m;
				}
				s->refs++;
				s->used_ms = now_mono_ms();
				return s;
			}
			/* the key now names another file: its set is no use; clones still on the old
			 * one keep it until they are gone */
			log_info("snapshot %s: another memory file than before: its working set starts again", key);
			s->key[0] = '\0';
			if (s->refs == 0) {
				snap_clear(s);
				free_slot = free_slot ? free_slot : s;
			}
			continue;
		}
		if (s->refs == 0 && (!lru || s->used_ms < lru->used_ms))
			lru = s;
	}
	struct snap *s = free_slot;
	if (!s && lru) {
		snap_clear(lru);
		s = lru;
	}
	if (!s)
		return NULL;
	s->npages = ((uint64_t)st->st_size + u->page - 1) / u->page;
	s->ws = bm_new(s->npages);
	s->data = bm_new(s->npages);
	s->size = (uint64_t)st->st_size;
	/* pages in the page cache are copied straight from it by UFFDIO_COPY (docs/uffdd.md) */
	s->map = mmap(NULL, s->size, PROT_READ, MAP_SHARED, fd, 0);
	if (!s->ws || !s->data || s->map == MAP_FAILED) {
		snap_clear(s);
		return NULL;
	}
	s->used = true;
	snprintf(s->key, sizeof(s->key), "%s", key);
	s->dev = st->st_dev;
	s->ino = st->st_ino;
	s->size = (uint64_t)st->st_size;
	s->refs = 1;
	s->used_ms = now_mono_ms();
	map_holes(s, fd, u->page);
	return s;
}

/* ---- clones ---- */

static void clone_close(struct clone *c)
{
	close_fd(&c->lsock);
	close_fd(&c->conn);
	close_fd(&c->uffd);
	close_fd(&c->memfd);
	close_fd(&c->pidfd);
	free(c->removed);
	free(c->pf);
	free(c->defer);
	c->removed = c->pf = c->defer = NULL;
	c->ndefer = c->capdefer = 0;
	c->pf_active = false;
	snap_release(c->snap);
	c->snap = NULL;
}

static void clone_free(struct clone *c)
{
	clone_close(c);
	memset(c, 0, sizeof(*c));
	c->lsock = c->conn = c->uffd = c->memfd = c->pidfd = -1;
}

static void log_stats(const struct clone *c, const char *what)
{
	log_info("VM %s: %s: %llu faults (%llu copied, %llu zero), %llu prefetched, %llu removes (%llu pages), "
		 "%llu retries, %llu pages recorded",
		 c->vm, what, (unsigned long long)c->st.faults, (unsigned long long)c->st.copied,
		 (unsigned long long)c->st.zero, (unsigned long long)c->st.prefetched,
		 (unsigned long long)c->st.removes, (unsigned long long)c->st.removed,
		 (unsigned long long)c->st.retries, (unsigned long long)c->st.recorded);
}

/* Its VMM is gone: nothing of it is needed but its figures (until uffd_stop). */
static void clone_gone(struct clone *c)
{
	if (c->state == C_GONE)
		return;
	log_stats(c, "its VMM is gone");
	clone_close(c);
	c->state = C_GONE;
	if (c->stop_pending)
		clone_free(c);
}

/* It cannot be served on: a refused handshake, an unreadable file, a fault outside its
 * regions. Its VMM may still run: the uffd stays open until it is gone (closing the last
 * reference would turn the guest's missing pages into zero pages), and the supervisor,
 * seeing state failed, kills it. */
__attribute__((format(printf, 2, 3))) static void clone_fail(struct clone *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	log_err("VM %s: cannot serve it on: %s (its VMM, pid %d, must be stopped)", c->vm, c->why, (int)c->pid);
	c->state = C_FAILED;
	c->pf_active = false;
	c->ndefer = 0;
	close_fd(&c->lsock);
	close_fd(&c->conn);
}

static bool pid_gone(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	return poll(&p, 1, 0) != 0;
}

int uffdd_init(struct uffdd *u)
{
	struct reader rd = u->rd; /* set up before (reader_init) */
	memset(u, 0, sizeof(*u));
	u->rd = rd;
	for (size_t i = 0; i < UFFDD_MAX_CLONES; i++)
		clone_free(&u->clones[i]);
	u->page = (uint64_t)sysconf(_SC_PAGESIZE);
	u->chan_open = true;
	u->pbuf = mmap(NULL, UFFDD_PF_CHUNK * u->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->pbuf == MAP_FAILED)
		return -ENOMEM;
	return 0;
}

struct clone *uffdd_find(struct uffdd *u, const char *vm)
{
	for (size_t i = 0; i < u->hi; i++)
		if (u->clones[i].used && strcmp(u->clones[i].vm, vm) == 0)
			return &u->clones[i];
	return NULL;
}

static bool sockopt_is(int fd, int opt, int want)
{
	int v = 0;
	socklen_t len = sizeof(v);
	return getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 && len == sizeof(v) && v == want;
}

__attribute__((format(printf, 3, 4))) static int refuse(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

int uffdd_serve(struct uffdd *u, const struct serve_args *a, uint64_t *pages, uint64_t *ws, char *why, size_t whylen)
{
	struct stat st;
	struct clone *c = uffdd_find(u, a->vm);

	if (c && c->state != C_GONE)
		return refuse(why, whylen, "VM %s is served already (%s)", a->vm, clone_state_name(c->state)), -EEXIST;
	/* every fd is checked here again, whatever the channel's kinds said */
	if (!sockopt_is(a->lsock, SO_DOMAIN, AF_UNIX) || !sockopt_is(a->lsock, SO_TYPE, SOCK_STREAM) ||
	    !sockopt_is(a->lsock, SO_ACCEPTCONN, 1))
		return refuse(why, whylen, "the socket is not a listening AF_UNIX stream socket"), -EINVAL;
	if (fstat(a->memfd, &st) < 0 || !S_ISREG(st.st_mode))
		return refuse(why, whylen, "the memory file is not a regular file"), -EINVAL;
	int fl = fcntl(a->memfd, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) == O_WRONLY)
		return refuse(why, whylen, "the memory file is not open for reading"), -EINVAL;
	if (st.st_size <= 0 || (uint64_t)st.st_size > UFFDD_MAX_FILE)
		return refuse(why, whylen, "the memory file has %lld bytes (1 to %llu)", (long long)st.st_size,
			      UFFDD_MAX_FILE),
		       -EINVAL;
	int lfl = fcntl(a->lsock, F_GETFL);
	if (lfl < 0 || fcntl(a->lsock, F_SETFL, lfl | O_NONBLOCK) < 0)
		return refuse(why, whylen, "the socket: %s", strerror(errno)), -errno;
	int pidfd = (int)syscall(SYS_pidfd_open, a->pid, 0);
	if (pidfd < 0)
		return refuse(why, whylen, "VMM pid %d: %s", (int)a->pid, strerror(errno)),
		       errno == ESRCH ? -ENOENT : -errno;
	if (!c) {
		for (size_t i = 0; i < UFFDD_MAX_CLONES && !c; i++)
			if (!u->clones[i].used)
				c = &u->clones[i];
		for (size_t i = 0; i < UFFDD_MAX_CLONES && !c; i++)
			if (u->clones[i].state == C_GONE) /* its figures were not asked for: they go */
				c = &u->clones[i];
	}
	if (!c) {
		close(pidfd);
		return refuse(why, whylen, "%d clones served already", UFFDD_MAX_CLONES), -ENOSPC;
	}
	clone_free(c);
	if ((unsigned)(c - u->clones) >= u->hi)
		u->hi = (unsigned)(c - u->clones) + 1;
	struct snap *s = snap_get(u, a->key, &st, a->memfd);
	if (!s) {
		close(pidfd);
		return refuse(why, whylen, "no room for another snapshot's working set"), -ENOSPC;
	}
	c->removed = bm_new(s->npages);
	if (!c->removed) {
		snap_release(s);
		close(pidfd);
		return refuse(why, whylen, "out of memory"), -ENOMEM;
	}
	c->used = true;
	c->state = C_LISTENING;
	snprintf(c->vm, sizeof(c->vm), "%s", a->vm);
	c->snap = s;
	c->pid = a->pid;
	c->pidfd = pidfd;
	c->lsock = a->lsock;
	c->memfd = a->memfd;
	c->page = u->page;
	c->npages = s->npages;
	c->record_ms = a->record_ms;
	c->prefetch = a->prefetch;
	*pages = s->npages;
	*ws = s->ws_pages;
	log_info("VM %s: waiting for its VMM (pid %d) on its socket: snapshot %s, %llu pages, working set %llu", c->vm,
		 (int)c->pid, s->key, (unsigned long long)s->npages, (unsigned long long)s->ws_pages);
	return 0;
}

bool uffdd_stop(struct uffdd *u, struct clone *c)
{
	(void)u;
	if (c->state == C_LISTENING || c->state == C_HANDSHAKE || c->state == C_GONE || pid_gone(c->pidfd)) {
		if (c->state != C_GONE)
			log_stats(c, "stopped");
		clone_free(c);
		return true;
	}
	/* its VMM runs and has the uffd: served until it is gone, never cut off */
	c->stop_pending = true;
	return false;
}

/* ---- the handshake ---- */

static void accept_peer(struct clone *c)
{
	int fd = accept4(c->lsock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return; /* gone before we took it */
	struct ucred cr = {0};
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || len != sizeof(cr)) {
		log_audit_limited_src(c->vm, "VM %s: refused a peer whose credentials cannot be read", c->vm);
		close(fd);
		return;
	}
	if (cr.pid != c->pid || c->state != C_LISTENING) {
		log_audit_limited((unsigned)cr.uid, "VM %s: refused a connection from pid %d uid %u: %s", c->vm,
				  (int)cr.pid, (unsigned)cr.uid,
				  c->state != C_LISTENING ? "its VMM connected already" : "not the VM's VMM");
		close(fd);
		return;
	}
	/* the pid is the VMM's only while the process we hold a pidfd to lives */
	if (pid_gone(c->pidfd)) {
		close(fd);
		clone_gone(c);
		return;
	}
	c->conn = fd;
	c->state = C_HANDSHAKE;
	c->deadline_ms = now_mono_ms() + UFFDD_HANDSHAKE_MS;
}

/* A userfaultfd, set up by its sender? Checked without /proc (uffdd's root is empty): an
 * anonymous inode that answers UFFDIO_API with EINVAL for a wrong API number (any other
 * anonymous inode answers ENOTTY: 0xAA is userfaultfd's ioctl type alone), and EINVAL again
 * for the right one, which only a uffd whose UFFDIO_API is done does. */
static const char *not_uffd(int fd)
{
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0 || (unsigned long)sf.f_type != ANON_INODE_FS_MAGIC)
		return "the fd is not a userfaultfd (not an anonymous inode)";
	struct uffdio_api api = {.api = 0};
	if (ioctl(fd, UFFDIO_API, &api) == 0 || errno != EINVAL)
		return "the fd is not a userfaultfd";
	api = (struct uffdio_api){.api = UFFD_API};
	if (ioctl(fd, UFFDIO_API, &api) == 0 || errno != EINVAL)
		return "the userfaultfd has not been set up (UFFDIO_API)";
	return NULL;
}

__attribute__((format(printf, 2, 3))) static void handshake_refused(struct clone *c, const char *fmt, ...)
{
	char why[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_audit_limited_src(c->vm, "VM %s: refused the handshake of its VMM (pid %d): %s", c->vm, (int)c->pid, why);
	/* it was the VMM's one handshake: it has nothing to be served with */
	clone_fail(c, "handshake refused: %s", why);
}

static void handshake(struct uffdd *u, struct clone *c)
{
	char buf[UFFDD_MAX_JSON + 1];
	union {
		char b[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
	int fds[8];

	ssize_t n = recvmsg(c->conn, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* every fd that came is counted (two, a forgery, is refused as such); those past fds[] closed */
	int nfds = n >= 0 ? (int)chan_take_fds(&mh, fds, ARRAY_LEN(fds), NULL) : 0;
	int nkept = nfds < (int)ARRAY_LEN(fds) ? nfds : (int)ARRAY_LEN(fds);
	const char *bad = NULL;
	char why[160];
	struct uffd_region reg[UFFDD_MAX_REGIONS];
	int nreg = 0;
	if (n < 0)
		snprintf(why, sizeof(why), "recvmsg: %s", strerror(errno)), bad = why;
	else if (n == 0)
		bad = "it closed the connection without a word";
	else if (mh.msg_flags & MSG_CTRUNC)
		bad = "more than one fd (some were cut off)";
	else if (nfds != 1)
		snprintf(why, sizeof(why), "%d fds with the regions (one, its userfaultfd, is expected)", nfds),
		    bad = why;
	else if ((size_t)n > UFFDD_MAX_JSON || (mh.msg_flags & MSG_TRUNC))
		snprintf(why, sizeof(why), "more than %d bytes of regions", UFFDD_MAX_JSON), bad = why;
	else if ((bad = not_uffd(fds[0])) != NULL)
		;
	else if ((nreg = regions_parse(buf, (size_t)n, reg, UFFDD_MAX_REGIONS, why, sizeof(why))) < 0)
		bad = why;
	else if (regions_check(reg, (unsigned)nreg, c->snap->size, c->page, why, sizeof(why)) < 0)
		bad = why;
	if (bad) {
		for (int i = 0; i < nkept; i++)
			close(fds[i]);
		handshake_refused(c, "%s", bad);
		return;
	}
	/* reads of it must never block the loop, whatever its sender set (the flag is on the
	 * open file, shared with the VMM, which creates it O_NONBLOCK anyway) */
	int fl = fcntl(fds[0], F_GETFL);
	if (fl < 0 || fcntl(fds[0], F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fds[0]);
		handshake_refused(c, "its userfaultfd cannot be made non-blocking: %s", strerror(errno));
		return;
	}
	c->uffd = fds[0];
	memcpy(c->reg, reg, sizeof(reg[0]) * (size_t)nreg);
	c->nreg = (unsigned)nreg;
	c->state = C_SERVING;
	c->record_until_ms = now_mono_ms() + c->record_ms;
	uint64_t bytes = 0;
	for (int i = 0; i < nreg; i++)
		bytes += reg[i].size;
	if (c->prefetch && c->snap->ws_pages > 0) {
		c->pf = bm_new(c->npages);
		if (c->pf) {
			memcpy(c->pf, c->snap->ws, (c->npages + 63) / 64 * sizeof(uint64_t));
			c->pf_active = true;
			c->pf_next = 0;
		}
	}
	log_info("VM %s: serving its VMM (pid %d): %d regions, %llu MiB%s%llu pages", c->vm, (int)c->pid, nreg,
		 (unsigned long long)(bytes >> 20), c->pf_active ? ", prefetching " : ", working set ",
		 (unsigned long long)c->snap->ws_pages);
	(void)u;
}

/* ---- serving ---- */

/* The region of address addr, and its file page. */
static bool addr_page(const struct clone *c, uint64_t addr, const struct uffd_region **out, uint64_t *fpage)
{
	for (unsigned i = 0; i < c->nreg; i++) {
		const struct uffd_region *r = &c->reg[i];
		if (addr >= r->base && addr - r->base < r->size) {
			*out = r;
			*fpage = (r->offset + (addr - r->base)) / c->page;
			return true;
		}
	}
	return false;
}

/* Place len bytes at addr: a copy of src, or zero pages (src NULL). A page already there
 * (EEXIST) is passed over. Returns 0, or -errno (-EAGAIN: a remove event is pending) with
 * *done the bytes dealt with before it. */
static int place(struct clone *c, uint64_t addr, uint64_t len, const char *src, uint64_t *done, uint64_t *existed)
{
	*done = 0;
	while (*done < len) {
		int64_t got;
		int rc;
		if (src) {
			struct uffdio_copy cp = {
			    .dst = addr + *done, .src = (uintptr_t)(src + *done), .len = len - *done};
			rc = ioctl(c->uffd, UFFDIO_COPY, &cp);
			got = cp.copy;
		} else {
			struct uffdio_zeropage zp = {.range = {.start = addr + *done, .len = len - *done}};
			rc = ioctl(c->uffd, UFFDIO_ZEROPAGE, &zp);
			got = zp.zeropage;
		}
		if (rc == 0)
			got = (int64_t)(len - *done);
		int err = rc == 0 ? 0 : errno;
		if (got > 0) {
			*done += (uint64_t)got;
			continue;
		}
		if (err == EEXIST) {
			(*existed)++;
			*done += c->page;
			continue;
		}
		return -(err ? err : EIO);
	}
	return 0;
}

struct fault {
	struct clone *c;
	uint64_t addr; /* page-aligned */
	uint64_t fpage;
	int read; /* 1: from the file, -1: a zero page */
};

static bool defer(struct clone *c, uint64_t addr)
{
	if (c->ndefer == c->capdefer) {
		unsigned cap = c->capdefer ? c->capdefer * 2 : 16;
		uint64_t *d = realloc(c->defer, cap * sizeof(*d));
		if (!d)
			return false;
		c->defer = d;
		c->capdefer = cap;
	}
	c->defer[c->ndefer++] = addr;
	return true;
}

static void record(struct clone *c, uint64_t fpage)
{
	if (c->record_ms == 0 || now_mono_ms() > c->record_until_ms || bm_test(c->snap->ws, fpage))
		return;
	bm_set(c->snap->ws, fpage);
	c->snap->ws_pages++;
	c->st.recorded++;
}

static void on_remove(struct clone *c, uint64_t start, uint64_t end)
{
	c->st.removes++;
	start &= ~(c->page - 1);
	for (uint64_t a = start; a < end; a += c->page) {
		const struct uffd_region *r;
		uint64_t fp;
		if (addr_page(c, a, &r, &fp) && !bm_test(c->removed, fp)) {
			bm_set(c->removed, fp);
			c->st.removed++;
		}
	}
}

/* Read the events queued on c's uffd; faults go to the batch. false: batch full. */
static bool read_events(struct clone *c, struct fault *batch, unsigned *nb)
{
	struct uffd_msg msgs[UFFDD_READ_MSGS];
	while (*nb + UFFDD_READ_MSGS <= UFFDD_FAULT_BATCH) {
		ssize_t n = read(c->uffd, msgs, UFFDD_READ_BYTES);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				clone_fail(c, "reading its userfaultfd: %s", strerror(errno));
			return true;
		}
		size_t k = (size_t)n / sizeof(msgs[0]);
		for (size_t i = 0; i < k; i++) {
			const struct uffd_msg *m = &msgs[i];
			if (m->event == UFFD_EVENT_PAGEFAULT) {
				batch[*nb].c = c;
				batch[*nb].addr = m->arg.pagefault.address & ~(c->page - 1);
				(*nb)++;
			} else if (m->event == UFFD_EVENT_REMOVE) {
				on_remove(c, m->arg.remove.start, m->arg.remove.end);
			} else {
				log_warn("VM %s: unexpected userfaultfd event %u", c->vm, (unsigned)m->event);
			}
		}
		if (k < UFFDD_READ_MSGS)
			return true;
	}
	return false;
}

static void serve_batch(struct uffdd *u, struct fault *batch, unsigned nb)
{
	for (unsigned i = 0; i < nb; i++) {
		struct fault *f = &batch[i];
		const struct uffd_region *r;
		f->read = -1;
		if (f->c->state != C_SERVING)
			continue;
		if (!addr_page(f->c, f->addr, &r, &f->fpage)) {
			clone_fail(f->c, "a fault at 0x%llx, outside the regions it described",
				   (unsigned long long)f->addr);
			continue;
		}
		/* a hole reads as zeros, and a removed page is zero since the balloon took it */
		if (bm_test(f->c->removed, f->fpage) || !bm_test(f->c->snap->data, f->fpage))
			continue;
		f->read = 1;
	}
	for (unsigned i = 0; i < nb; i++) {
		struct fault *f = &batch[i];
		struct clone *c = f->c;
		uint64_t done, existed = 0;
		if (c->state != C_SERVING)
			continue;
		/* straight from the file's mapping: one ioctl, no read (the kernel copies from the
		 * page cache, reading from the disk first if it must) */
		int rc = place(c, f->addr, u->page, f->read >= 0 ? c->snap->map + f->fpage * u->page : NULL, &done,
			       &existed);
		if (rc == -EAGAIN) {
			c->st.retries++;
			if (!defer(c, f->addr))
				clone_fail(c, "out of memory deferring a fault");
			continue;
		}
		if (rc == -ESRCH) { /* its address space is gone: so is the VMM */
			clone_gone(c);
			continue;
		}
		if (rc < 0) {
			/* EFAULT: the file could not be read. Never a zero page in its place: the guest
			 * would run on with wrong memory */
			clone_fail(c, "placing page 0x%llx (file page %llu): %s", (unsigned long long)f->addr,
				   (unsigned long long)f->fpage, strerror(-rc));
			continue;
		}
		c->st.faults++;
		if (existed) {
			/* there already (a prefetch, a duplicate event): make sure its thread runs */
			struct uffdio_range wr = {.start = f->addr, .len = u->page};
			ioctl(c->uffd, UFFDIO_WAKE, &wr);
		} else if (f->read >= 0) {
			c->st.copied++;
		} else {
			c->st.zero++;
		}
		if (!bm_test(c->removed, f->fpage))
			record(c, f->fpage);
	}
}

/* Are the n pages at p (in a file's mapping) all in the page cache? */
static bool resident(struct uffdd *u, const char *p, uint64_t n)
{
	unsigned char vec[UFFDD_PF_RUN];
	if (n > UFFDD_PF_RUN || mincore((void *)p, n * u->page, vec) < 0)
		return false;
	for (uint64_t i = 0; i < n; i++)
		if (!(vec[i] & 1))
			return false;
	return true;
}

/* One round of prefetch for c: up to UFFDD_PF_CHUNK pages of its working set. */
static void prefetch_round(struct uffdd *u, struct clone *c)
{
	struct rd_req reads[UFFDD_PF_CHUNK / UFFDD_PF_RUN + 1];
	struct {
		uint64_t addr, pages;
	} runs[UFFDD_PF_CHUNK / UFFDD_PF_RUN + 1];
	unsigned nr = 0;
	uint64_t used = 0, done, existed = 0;

	while (c->state == C_SERVING && used < UFFDD_PF_CHUNK && nr < ARRAY_LEN(runs)) {
		uint64_t fp = bm_next(c->pf, c->pf_next, c->npages);
		if (fp >= c->npages) {
			c->pf_active = false;
			break;
		}
		if (bm_test(c->removed, fp)) {
			c->pf_next = fp + 1;
			continue;
		}
		/* the file page's address, and how far the run goes: set, not removed, in the same
		 * region, all data or all hole */
		const struct uffd_region *r = NULL;
		for (unsigned i = 0; i < c->nreg && !r; i++)
			if (fp * u->page >= c->reg[i].offset && fp * u->page - c->reg[i].offset < c->reg[i].size)
				r = &c->reg[i];
		if (!r) { /* in no region of this VMM: nothing to place */
			c->pf_next = fp + 1;
			continue;
		}
		uint64_t addr = r->base + (fp * u->page - r->offset);
		uint64_t rend = (r->offset + r->size) / u->page;
		bool data = bm_test(c->snap->data, fp);
		uint64_t n = 1;
		while (fp + n < rend && n < UFFDD_PF_RUN && used + n < UFFDD_PF_CHUNK && bm_test(c->pf, fp + n) &&
		       !bm_test(c->removed, fp + n) && bm_test(c->snap->data, fp + n) == data)
			n++;
		c->pf_next = fp + n;
		if (!data) {
			uint64_t before = existed;
			int rc = place(c, addr, n * u->page, NULL, &done, &existed);
			c->st.prefetched += done / u->page - (existed - before);
			if (rc == -ESRCH)
				clone_gone(c);
			continue;
		}
		if (resident(u, c->snap->map + fp * u->page, n)) {
			/* in the page cache: one copy, by UFFDIO_COPY from the mapping */
			uint64_t before = existed;
			int rc = place(c, addr, n * u->page, c->snap->map + fp * u->page, &done, &existed);
			c->st.prefetched += done / u->page - (existed - before);
			if (rc == -ESRCH)
				clone_gone(c);
			continue;
		}
		/* from the disk: read through the ring with the chunk's others, overlapping */
		reads[nr] = (struct rd_req){.fd = c->memfd,
					    .off = fp * u->page,
					    .len = (uint32_t)(n * u->page),
					    .buf = (char *)u->pbuf + used * u->page};
		runs[nr].addr = addr;
		runs[nr].pages = n;
		nr++;
		used += n;
	}
	reader_run(&u->rd, reads, nr);
	for (unsigned i = 0; i < nr && c->state == C_SERVING; i++) {
		if (reads[i].res < 0)
			continue; /* best effort: the guest's fault reads it again, and fails the clone then */
		uint64_t before = existed;
		int rc = place(c, runs[i].addr, runs[i].pages * u->page, reads[i].buf, &done, &existed);
		c->st.prefetched += done / u->page - (existed - before);
		if (rc == -ESRCH)
			clone_gone(c);
		/* -EAGAIN: a remove event is pending: the rest of the run is left to faults */
	}
}

/* ---- the loop ---- */

enum { W_CHAN, W_PIDFD, W_LSOCK, W_CONN, W_UFFD };
struct watch {
	struct clone *c;
	int what;
};

static bool lives(const struct clone *c)
{
	return c->used && c->state != C_GONE;
}

int uffdd_run(struct uffdd *u, int chan_fd, int (*chan_ready)(void *arg), void *arg)
{
	static struct pollfd pfd[1 + 4 * UFFDD_MAX_CLONES];
	static struct watch w[1 + 4 * UFFDD_MAX_CLONES];
	static struct fault batch[UFFDD_FAULT_BATCH];

	for (;;) {
		unsigned n = 0;
		int timeout = -1;
		bool any = false, busy = false;
		uint64_t now = now_mono_ms();

		if (u->chan_open) {
			pfd[n] = (struct pollfd){.fd = chan_fd, .events = POLLIN};
			w[n++] = (struct watch){NULL, W_CHAN};
		}
		for (size_t i = 0; i < u->hi; i++) {
			struct clone *c = &u->clones[i];
			if (!lives(c))
				continue;
			any = true;
			pfd[n] = (struct pollfd){.fd = c->pidfd, .events = POLLIN};
			w[n++] = (struct watch){c, W_PIDFD};
			if (c->lsock >= 0) {
				pfd[n] = (struct pollfd){.fd = c->lsock, .events = POLLIN};
				w[n++] = (struct watch){c, W_LSOCK};
			}
			if (c->conn >= 0) {
				/* serving: only its hang-up (a VMM sends nothing after the handshake) */
				pfd[n] = (struct pollfd){.fd = c->conn, .events = c->state == C_HANDSHAKE ? POLLIN : 0};
				w[n++] = (struct watch){c, W_CONN};
			}
			if (c->state == C_SERVING) {
				pfd[n] = (struct pollfd){.fd = c->uffd, .events = POLLIN};
				w[n++] = (struct watch){c, W_UFFD};
			}
			if (c->state == C_HANDSHAKE) {
				int left = c->deadline_ms > now ? (int)(c->deadline_ms - now) : 0;
				timeout = timeout < 0 || left < timeout ? left : timeout;
			}
			if (c->pf_active)
				busy = true;
			if (c->ndefer && timeout != 0)
				timeout = 1; /* a remove event is on its way: retry soon */
		}
		if (!u->chan_open && !any)
			return 0;
		if (busy)
			timeout = 0;
		int pr = poll(pfd, n, timeout);
		if (pr < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			return 1;
		}
		unsigned nb = 0;
		bool requests = false;
		for (unsigned i = 0; pr > 0 && i < n; i++) {
			if (!pfd[i].revents)
				continue;
			struct clone *c = w[i].c;
			if (w[i].what == W_CHAN) {
				requests = true;
				continue;
			}
			if (!lives(c))
				continue;
			switch (w[i].what) {
			case W_PIDFD:
				clone_gone(c);
				break;
			case W_LSOCK:
				accept_peer(c);
				break;
			case W_CONN:
				if (c->state == C_HANDSHAKE) {
					handshake(u, c);
				} else if (pfd[i].revents & (POLLHUP | POLLERR)) {
					/* FC holds it for its lifetime: it is going. Served until its pidfd says so */
					close_fd(&c->conn);
				}
				break;
			case W_UFFD:
				if (c->state == C_SERVING && !read_events(c, batch, &nb))
					i = n; /* batch full: the rest next round */
				break;
			}
		}
		/* faults deferred by EAGAIN, now that the remove events have been read */
		for (size_t i = 0; i < u->hi; i++) {
			struct clone *c = &u->clones[i];
			if (!lives(c) || c->state != C_SERVING)
				continue;
			unsigned k = 0;
			while (k < c->ndefer && nb < UFFDD_FAULT_BATCH) {
				batch[nb].c = c;
				batch[nb++].addr = c->defer[k++];
			}
			memmove(c->defer, c->defer + k, (c->ndefer - k) * sizeof(*c->defer));
			c->ndefer -= k;
		}
		if (nb)
			serve_batch(u, batch, nb);
		now = now_mono_ms();
		for (size_t i = 0; i < u->hi; i++) {
			struct clone *c = &u->clones[i];
			if (lives(c) && c->state == C_HANDSHAKE && now >= c->deadline_ms)
				handshake_refused(c, "no regions within %d ms of connecting", UFFDD_HANDSHAKE_MS);
			if (lives(c) && c->state == C_FAILED && c->stop_pending && pid_gone(c->pidfd))
				clone_gone(c);
		}
		/* one prefetch round, for one clone in turn, between rounds of faults */
		for (unsigned k = 0; k < u->hi; k++) {
			struct clone *c = &u->clones[(u->pf_turn + k) % u->hi];
			if (lives(c) && c->pf_active && c->state == C_SERVING) {
				prefetch_round(u, c);
				if (!c->pf_active)
					log_stats(c, "working set prefetched");
				u->pf_turn = (u->pf_turn + k + 1) % u->hi;
				break;
			}
		}
		if (requests) {
			int r = chan_ready(arg);
			if (r <= 0) {
				u->chan_open = false;
				/* no new clones: those without a VMM connected go, the live ones are
				 * served until their VMMs are gone */
				unsigned live = 0;
				for (size_t i = 0; i < u->hi; i++) {
					struct clone *c = &u->clones[i];
					if (lives(c) && (c->state == C_LISTENING || c->state == C_HANDSHAKE))
						clone_free(c);
					else if (lives(c))
						live++;
				}
				if (live)
					log_info("serving %u clones until their VMMs are gone", live);
				if (r < 0 && !live)
					return 1;
			}
		}
	}
}
