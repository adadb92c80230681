/* fcvm-uffdd's page server (docs/uffdd.md): clones, their snapshots' working sets, and the
 * one event loop that serves them all. Single-threaded. */
#ifndef FCVM_UFFDD_H
#define FCVM_UFFDD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "helpers/uffdd/filter.h"
#include "helpers/uffdd/reader.h"
#include "helpers/uffdd/regions.h"

#define UFFDD_MAX_CLONES   128		  /* records, gone ones included (evicted first when full) */
#define UFFDD_MAX_SNAPS	   64		  /* working sets kept (least recently used, unreferenced, go) */
#define UFFDD_MAX_FILE	   (256ull << 30) /* a memory file beyond it is refused (bitmaps: 8 MiB each) */
#define UFFDD_HANDSHAKE_MS 5000		  /* a connected VMM has this long to send its regions */
#define UFFDD_RECORD_MS	   10000	  /* faults this long after the handshake count into the working set */
#define UFFDD_FAULT_BATCH  512		  /* faults read and served in one round */
#define UFFDD_PF_CHUNK	   4096		  /* pages prefetched in one round (16 MiB), between fault rounds */
#define UFFDD_PF_RUN	   256		  /* pages in one read and one UFFDIO_COPY (1 MiB) */

enum clone_state { C_LISTENING, C_HANDSHAKE, C_SERVING, C_GONE, C_FAILED };

struct uffdd_stats {
	uint64_t faults, copied, zero, prefetched, removes, removed, retries, recorded;
};

struct snap {
	bool used;
	char key[129];
	dev_t dev;
	ino_t ino;
	uint64_t size, npages;
	uint64_t *ws;	 /* the working set: file pages the clones faulted in their first seconds */
	uint64_t *data;	 /* file pages that hold data (0: a hole, read as zeros) */
	const char *map; /* the file, PROT_READ: UFFDIO_COPY's source for what the page cache holds */
	uint64_t ws_pages;
	unsigned refs; /* clones serving from it */
	uint64_t used_ms;
};

struct clone {
	bool used;
	enum clone_state state;
	char vm[65];
	struct snap *snap;
	pid_t pid;
	int pidfd, lsock, conn, uffd, memfd;
	uint64_t deadline_ms; /* C_HANDSHAKE: the regions by then */
	uint64_t page, npages;
	struct uffd_region reg[UFFDD_MAX_REGIONS];
	unsigned nreg;
	uint64_t *removed; /* file pages a remove event took away: zero from then on */
	uint64_t *pf;	   /* pages to prefetch (the working set as it was at the handshake) */
	uint64_t pf_next;
	bool pf_active, prefetch;
	uint64_t record_ms, record_until_ms;
	bool stop_pending; /* uffd_stop while its VMM runs: dropped once it is gone */
	uint64_t *defer;   /* fault addresses whose placing met EAGAIN (a remove event pending) */
	unsigned ndefer, capdefer;
	struct uffdd_stats st;
	char why[200];
};

struct uffdd {
	struct clone clones[UFFDD_MAX_CLONES];
	struct snap snaps[UFFDD_MAX_SNAPS];
	struct reader rd;
	uint64_t page; /* the host's */
	void *pbuf;    /* UFFDD_PF_CHUNK pages */
	unsigned hi;   /* clones[hi..] have never been used: the loops stop there */
	unsigned pf_turn;
	bool chan_open;
};

const char *clone_state_name(enum clone_state s);

/* u->rd set up already (reader_init: before the sandbox, in uffdd). 0 or -errno. */
int uffdd_init(struct uffdd *u);

struct serve_args {
	const char *vm, *key;
	pid_t pid;
	int lsock, memfd; /* taken on success */
	uint64_t record_ms;
	bool prefetch;
};
/* A clone to serve: checks the fds and the VMM, starts listening. 0 (pages and ws filled)
 * or -errno with why set. */
int uffdd_serve(struct uffdd *u, const struct serve_args *a, uint64_t *pages, uint64_t *ws, char *why, size_t whylen);
struct clone *uffdd_find(struct uffdd *u, const char *vm);
/* Forget c once its VMM is gone (now, if it is or never connected). true: done now. */
bool uffdd_stop(struct uffdd *u, struct clone *c);

/* Serve until the channel is closed and no clone's VMM lives. chan_ready is called when the
 * channel (chan_fd) is readable: 1 go on, 0 closed (orderly), -1 closed (error). Returns the
 * exit status. */
int uffdd_run(struct uffdd *u, int chan_fd, int (*chan_ready)(void *arg), void *arg);

#endif
