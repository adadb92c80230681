/* Reads of a snapshot's memory file into uffdd's buffers, many at once: through io_uring
 * (one io_uring_enter for a whole batch) or pread (one call per read). docs/uffdd.md has
 * the figures that chose between them. */
#ifndef FCVM_UFFDD_READER_H
#define FCVM_UFFDD_READER_H

#include <stdbool.h>
#include <stdint.h>

#include <liburing.h>

enum reader_kind {
	READER_URING,	   /* io_uring for batches, pread for a lone read (see reader_run) */
	READER_PREAD,	   /* pread always */
	READER_URING_ONLY, /* io_uring even for one read (the bench's comparison) */
};

struct rd_req {
	int fd;
	uint64_t off;
	uint32_t len;
	void *buf;
	int res; /* 0 once all len bytes are read, else -errno (-EIO: the file ended) */
};

struct reader {
	enum reader_kind kind;
	bool ring_up;
	unsigned depth;
	struct io_uring ring;
	uint64_t fallbacks; /* io_uring reads finished by pread (ECANCELED: no io-wq worker) */
};

/* depth: requests in flight at once. The ring cannot always be set up (io_uring disabled by
 * sysctl, or refused by a filter): READER_URING then reads with pread, and says so. 0 or -errno. */
int reader_init(struct reader *r, enum reader_kind kind, unsigned depth);
void reader_free(struct reader *r);
int reader_fd(const struct reader *r); /* the ring's, or -1 */
const char *reader_name(const struct reader *r);

/* Read every request in full. Returns 0 when each has res set (0 or -errno). */
int reader_run(struct reader *r, struct rd_req *reqs, unsigned n);

#endif
