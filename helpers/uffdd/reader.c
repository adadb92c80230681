/* reader.h. Under uffdd's sandbox (RLIMIT_NPROC 0, its own uid) io_uring can create no
 * io-wq worker: a read the kernel cannot complete inline or by its async buffered-read path
 * ends with -ECANCELED (or -EAGAIN), and is then done with pread. */
#include <errno.h>
#include <sys/uio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "helpers/uffdd/reader.h"

int reader_init(struct reader *r, enum reader_kind kind, unsigned depth)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->depth = depth ? depth : 64;
	if (kind == READER_PREAD)
		return 0;
	/* Seccomp does not see what a ring does: it is made disabled, restricted to
	 * IORING_OP_READ with no further registration, and only then enabled. uffdd makes it
	 * before its filter, which then allows io_uring_enter alone: no other ring, no other op. */
	int rc = io_uring_queue_init(r->depth, &r->ring, IORING_SETUP_R_DISABLED);
	if (rc == 0) {
		struct io_uring_restriction res[] = {
		    {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READ},
		};
		/* io_uring_register directly: Debian's liburing 2.3 does not export
		 * io_uring_register_restrictions nor io_uring_enable_rings */
		rc = io_uring_register(r->ring.ring_fd, IORING_REGISTER_RESTRICTIONS, res, 1);
		if (rc == 0)
			rc = io_uring_register(r->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
		if (rc < 0)
			io_uring_queue_exit(&r->ring);
	}
	if (rc < 0) {
		if (kind == READER_URING_ONLY)
			return rc;
		log_warn("io_uring unavailable (%s): reading with pread", strerror(-rc));
		r->kind = READER_PREAD;
		return 0;
	}
	r->ring_up = true;
	return 0;
}

int reader_fd(const struct reader *r)
{
	return r->ring_up ? r->ring.ring_fd : -1;
}

void reader_free(struct reader *r)
{
	if (r->ring_up)
		io_uring_queue_exit(&r->ring);
	r->ring_up = false;
}

const char *reader_name(const struct reader *r)
{
	return r->kind == READER_PREAD ? "pread" : "io_uring";
}

static void read_pread(struct rd_req *q, uint32_t done)
{
	while (done < q->len) {
		ssize_t n = pread(q->fd, (char *)q->buf + done, q->len - done, (off_t)(q->off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			q->res = n < 0 ? -errno : -EIO;
			return;
		}
		done += (uint32_t)n;
	}
	q->res = 0;
}

/* Read reqs[0..n) through the ring, depth at a time. */
static int run_uring(struct reader *r, struct rd_req **reqs, unsigned n)
{
	unsigned next = 0, inflight = 0;
	while (next < n || inflight > 0) {
		while (next < n && inflight < r->depth) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
			if (!sqe)
				break;
			struct rd_req *q = reqs[next];
			q->res = 1; /* in flight; the CQE's user_data is the request */
			io_uring_prep_read(sqe, q->fd, q->buf, q->len, q->off);
			io_uring_sqe_set_data(sqe, q);
			next++;
			inflight++;
		}
		int rc = io_uring_submit_and_wait(&r->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			return rc;
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&r->ring, head, cqe)
		{
			struct rd_req *q = io_uring_cqe_get_data(cqe);
			int res = cqe->res;
			seen++;
			inflight--;
			if (res == (int)q->len) {
				q->res = 0;
			} else if (res == -ECANCELED || res == -EAGAIN || res == -EINTR ||
				   (res > 0 && res < (int)q->len)) {
				/* short, or no worker to finish it: the rest synchronously */
				r->fallbacks++;
				read_pread(q, res > 0 ? (uint32_t)res : 0);
			} else {
				q->res = res < 0 ? res : -EIO;
			}
		}
		io_uring_cq_advance(&r->ring, seen);
	}
	return 0;
}

/* What is in the page cache already, without blocking: the rest of q (from done) is left. */
static bool read_nowait(struct rd_req *q)
{
	uint32_t done = 0;
	while (done < q->len) {
		struct iovec iov = {.iov_base = (char *)q->buf + done, .iov_len = q->len - done};
		ssize_t n = preadv2(q->fd, &iov, 1, (off_t)(q->off + done), RWF_NOWAIT);
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EOPNOTSUPP && errno != EINTR)) {
				q->res = n == 0 ? -EIO : -errno;
				return true;
			}
			break;
		}
		done += (uint32_t)n;
	}
	if (done == q->len) {
		q->res = 0;
		return true;
	}
	/* the rest must come from the disk: move it to the front of the request */
	q->res = (int)done;
	return false;
}

int reader_run(struct reader *r, struct rd_req *reqs, unsigned n)
{
	struct rd_req *rest[512];
	unsigned nrest = 0;

	if (n == 0)
		return 0;
	if (r->kind == READER_PREAD || !r->ring_up) {
		for (unsigned i = 0; i < n; i++)
			read_pread(&reqs[i], 0);
		return 0;
	}
	if (r->kind == READER_URING_ONLY) {
		for (unsigned i = 0; i < n; i += (unsigned)ARRAY_LEN(rest)) {
			unsigned k = n - i < ARRAY_LEN(rest) ? n - i : (unsigned)ARRAY_LEN(rest);
			for (unsigned j = 0; j < k; j++)
				rest[j] = &reqs[i + j];
			int rc = run_uring(r, rest, k);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	/* READER_URING: what the page cache holds is copied at once (a 1 MiB read through the
	 * ring costs 3x a pread of it, docs/uffdd.md); what has to come from the disk goes to
	 * the ring in one batch, where the reads overlap (5x faster than one pread after the
	 * other); a lone one is a pread */
	for (unsigned i = 0; i < n; i++) {
		if (read_nowait(&reqs[i]))
			continue;
		uint32_t got = (uint32_t)reqs[i].res;
		if (got || nrest == ARRAY_LEN(rest)) {
			read_pread(&reqs[i], got);
			continue;
		}
		rest[nrest++] = &reqs[i];
	}
	if (nrest == 1) {
		read_pread(rest[0], 0);
		return 0;
	}
	return run_uring(r, rest, nrest);
}
