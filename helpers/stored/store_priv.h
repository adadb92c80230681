/* stored's building blocks, shared by store.c (disks, images) and snapshot.c (snapshots).
 * Not an interface for anyone else: every caller is inside stored. */
#ifndef FCVM_STORE_PRIV_H
#define FCVM_STORE_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "helpers/stored/store.h"

/* NAME.<16 hex digits>: a unique work name under .tmp/. */
int store_tmp_name(char *buf, size_t len, const char *name);
/* An empty object directory .tmp/TNAME: a subvolume on btrfs. */
int store_mk_obj_dir(struct store *s, const char *tname);
/* .tmp/TNAME -> DIR/NAME, -EEXIST rather than replacing. */
int store_publish(struct store *s, const char *tname, int dir, const char *name);
/* PARENT/NAME whatever it is (subvolumes included); depth 0 from the caller. */
int store_rm_tree(int parent, const char *name, int depth);
/* IN into OUT from offset 0, holes kept (SEEK_DATA/SEEK_HOLE). */
int store_sparse_copy(int in, int out);
/* A reflink where the backend has them, else store_sparse_copy. */
int store_clone_or_copy(struct store *s, int in, int out);
/* -ENOSPC unless BYTES plus the margin are free. */
int store_need_space(struct store *s, uint64_t bytes);
/* 0 if DIR/NAME does not exist (as anything), -EEXIST if it does. */
int store_absent(int dir, const char *name);
/* disks/NAME/disk.qcow2: an empty qcow2 overlay on the raw file BASE (any open fd of it),
 * QEMU to open BACKING_NAME as that file; RECORD names the base (disks/NAME/base), which
 * store_base_in_use finds. SIZE 0: the base's. As store_create_overlay otherwise. */
int store_overlay_on(struct store *s, const char *name, uint64_t size, int base, const char *record,
		     const char *backing_name, int *fd);
/* 1 while some disk's overlay names RECORD as its base, else 0 (or -errno). */
int store_base_in_use(struct store *s, const char *record);

/* FN for each valid object name under SUB (a directory beneath the root). */
int store_list_objs(struct store *s, const char *sub, void (*fn)(const char *name, void *arg), void *arg);

#endif
