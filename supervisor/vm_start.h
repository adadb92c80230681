/* One VM start in progress (supervisor/vm.c), shared with the clone path (vm_clone.c): what
 * the client asked, until the VMM runs. */
#ifndef FCVM_VM_START_H
#define FCVM_VM_START_H

#include <stdbool.h>

#include "proto/proto.h"

struct vm;
struct client;

struct vm_start {
	struct vm *vm;
	struct client *c;
	struct pmsg rep; /* the client's reply, sent once the VMM runs */
	int image_fd;
	int disk_fd;
	int ram_fd, state_fd;		    /* a clone's: its snapshot's template RAM and device state */
	int disk_base_fd;		    /* a clone's: the snapshot's disk (its qcow2 disk's backing file) */
	unsigned want_cpu, want_mem;	    /* a clone: what the client asked (0: the snapshot's) */
	char tag[65];			    /* a clone: its snapshot */
	unsigned helper_tries;		    /* asked a helper that was (re)starting */
	void (*retry)(struct vm_start *st); /* what to ask again */
	char warning[320];
	struct pmsg net_req; /* netd's net_create, unless --network none */
	bool has_net;
	bool net_asked; /* --network given (a clone: else its snapshot's decides) */
	int net_fds[3]; /* from netd: tap (QEMU's), netns and userns (pasta's) */
	/* the startup cache (startup_cache.c): each level's tag, the level being tried (-1: none) */
	char cache_tag[3][48];
	int cache_try;
};

/* The start failed: the client is told, and what was made is taken down. */
void start_fail(struct vm_start *st, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A helper answered that it is (re)starting: ask again shortly (true), or give up (false). */
bool start_retry_later(struct vm_start *st, const struct pmsg *rep, void (*again)(struct vm_start *st));
/* A new VM's: stored makes its disk, then start_have_disk. */
void start_ask_for_disk(struct vm_start *st);
/* The disk is there (st->disk_fd): on to the network, then the VMM. */
void start_have_disk(struct vm_start *st);

/* The clone path (supervisor/vm_clone.c): its snapshot opened by stored (template RAM, state,
 * a disk of its own, the image), then start_have_disk. */
void clone_ask_for_snapshot(struct vm_start *st);

#endif
