/* Snapshots: a VM at one instant, kept by stored beneath its data directory.
 *
 *   snapshots/TAG/mem       the guest's RAM, a sparse copy of its memfd (0400)
 *   snapshots/TAG/state     QEMU's device state (the migration stream without the RAM, 0400)
 *   snapshots/TAG/disk.img  the VM's disk, reflinked (btrfs, XFS) or copied sparsely (0400)
 *   snapshots/TAG/image     the image disk the VM was started with (0400)
 *   snapshots/TAG/meta      key=value lines: what the supervisor vouched for (snap_meta)
 *   snapshots/.used.TAG     when it was last cloned (ms, realtime): the startup cache's LRU
 *
 * Built in three steps while the VM is paused: snap_begin makes .tmp/TAG.<random>/ and
 * hands out its state file for QEMU to write; snap_commit copies the RAM, the disk and the
 * image into it, makes it read-only (the files 0400; on btrfs the subvolume read-only too)
 * and renames it into snapshots/; snap_abort (or a restart: .tmp/ is emptied) discards it.
 *
 * Clones read it through snap_open: the RAM as a memfd sealed against writes, shrinking,
 * growing and unsealing (one per snapshot, shared by every clone of it: they map it private,
 * copy-on-write), the state read-only, and a new disk in disks/ made from disk.img.
 *
 * Every function returns 0 or a negative errno. */
#ifndef FCVM_SNAPSHOT_H
#define FCVM_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "helpers/stored/store.h"

struct snap_meta {
	char tag[STORE_NAME_MAX + 1];
	char vm[STORE_NAME_MAX + 1];
	char image[257];
	char accel[9];
	char assets[STORE_NAME_MAX + 1];
	char network[17];		      /* none | bridged | rootless */
	char kind[9];			      /* user | cache (the supervisor's startup cache) */
	uint64_t owner, created_ms, cpu, mem; /* mem: MiB */
	uint64_t used_ms;		      /* last snap_open (snapshots/.used.TAG), else created_ms */
};

struct snap_usage {
	uint64_t mem, state, disk, image, total; /* bytes allocated */
};

int snap_begin(struct store *s, const char *tag, int *state_fd);
/* RAM_FD: the VM's RAM memfd, exactly M->mem MiB; DISK: its disk's name in disks/;
 * IMAGE_FD: its image disk. */
int snap_commit(struct store *s, const struct snap_meta *m, const char *disk, int ram_fd, int image_fd);
int snap_abort(struct store *s, const char *tag);
/* fds: [0] the sealed template RAM, [1] the state (O_RDONLY), [2] disks/DISK (new, O_RDWR),
 * [3] the image (O_RDONLY), [4] the snapshot's disk (O_RDONLY). *OVERLAY: [2] is a qcow2
 * overlay on [4] (plain filesystems), else a raw reflink of it. */
#define SNAP_OPEN_FDS 5
int snap_open(struct store *s, const char *tag, const char *disk, struct snap_meta *m, int fds[SNAP_OPEN_FDS],
	      bool *overlay);
/* Removes snapshots/TAG (and forgets its template: running clones keep theirs); -EBUSY while
 * a clone's overlay reads through its disk. */
int snap_remove(struct store *s, const char *tag);
int snap_read_meta(struct store *s, const char *tag, struct snap_meta *m);
int snap_usage_of(struct store *s, const char *tag, struct snap_usage *u);
/* Calls FN for each snapshot tag (order unspecified). */
int snap_list(struct store *s, void (*fn)(const char *tag, void *arg), void *arg);

#endif
