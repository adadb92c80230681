/* stored's storage core: images and VM disks under one data directory, handed out as open
 * file descriptors, never paths.
 *
 * Layout beneath the root fd:
 *   images/NAME/disk.img   read-only base images (mode 0444)
 *   disks/NAME/disk.img    VM disks (mode 0600)
 *   disks/NAME/disk.qcow2  or a VM disk that is a qcow2 overlay on an image (copy backend)
 *   snapshots/TAG/         a VM at one instant, read-only (snapshot.h)
 *   .tmp/                  objects under construction; emptied by store_reconcile()
 * On btrfs every images/NAME and disks/NAME is a subvolume, so a disk based on an image or
 * cloned from another disk is one snapshot ioctl. Elsewhere they are plain directories and
 * the file is reflinked (FICLONE) or, failing that, copied sparsely.
 *
 * Every object is built under .tmp/NAME.<random> and renamed into place with
 * RENAME_NOREPLACE, so a crash never leaves a partial images/NAME or disks/NAME.
 *
 * Confinement: names must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63} (and are never "." or "..");
 * every open beneath the root is openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
 * RESOLVE_NO_MAGICLINKS|RESOLVE_NO_XDEV), so a planted symlink fails with ELOOP and a mount
 * point with EXDEV. btrfs is driven with raw ioctls (no libbtrfsutil link dependency).
 *
 * Every function returns 0 or a negative errno; nothing prints or exits. Not thread-safe:
 * one struct store per thread. */
#ifndef FCVM_STORE_H
#define FCVM_STORE_H

#include <stdint.h>

enum store_backend {
	STORE_BTRFS,   /* subvolumes + snapshots */
	STORE_REFLINK, /* FICLONE works (XFS with reflink=1, bcachefs, ...) */
	STORE_COPY,    /* full sparse copies: the caller should warn */
};

/* Free space that must remain after any create/clone/import (metadata, logs, growth). */
#define STORE_DEFAULT_MARGIN (16ULL << 20)

struct store {
	int root;      /* the data directory (owned) */
	int images;    /* root/images (owned) */
	int disks;     /* root/disks (owned) */
	int snapshots; /* root/snapshots (owned) */
	int tmp;       /* root/.tmp (owned) */
	enum store_backend backend;
	uint64_t margin; /* STORE_DEFAULT_MARGIN unless changed after store_open */
};

const char *store_backend_name(enum store_backend b);

/* 1 when NAME is a valid object name, else 0. */
#define STORE_NAME_MAX 64 /* as DISK_NAME_MAX in the schema (proto/ops.c) */
int store_name_ok(const char *name);

/* openat2 beneath DIRFD with RESOLVE_BENEATH|NO_SYMLINKS|NO_MAGICLINKS|NO_XDEV; O_CLOEXEC is
 * always added. Returns the fd or -errno. */
int store_openat(int dirfd, const char *path, int flags, mode_t mode);

/* Takes ownership of ROOTFD (a directory, O_PATH or O_RDONLY; closed on failure too), creates
 * images/, disks/, .tmp/ if missing, probes the backend (btrfs by statfs magic; else a FICLONE
 * between two O_TMPFILE files in .tmp/) and runs store_reconcile(). */
int store_open(struct store *s, int rootfd);
void store_close(struct store *s);

/* Removes everything under .tmp/ (subvolumes included): half-made objects of a crash. */
int store_reconcile(struct store *s);

/* Creates disks/NAME/disk.img and returns in *FD an O_RDWR|O_CLOEXEC fd of it.
 * BASE_IMAGE NULL: a blank sparse file of SIZE bytes (SIZE > 0).
 * BASE_IMAGE set: a snapshot (btrfs) / reflink / copy of images/BASE/disk.img; SIZE 0 keeps
 * the image's size, a larger SIZE grows it (sparse), a smaller one is -EINVAL.
 * Space policy (-ENOSPC): a blank disk is thin, so it is refused only when SIZE exceeds the
 * filesystem's total size or free space is below the margin; a based disk needs the margin
 * plus, on STORE_COPY, the base's allocated bytes. -EEXIST if disks/NAME exists (as anything,
 * a symlink included). */
int store_create_disk(struct store *s, const char *name, uint64_t size, const char *base_image, int *fd);

/* Creates disks/NAME/disk.qcow2: an empty qcow2 (v3) overlay whose backing file is the raw
 * images/BASE_IMAGE/disk.img, for QEMU where extents cannot be shared (STORE_COPY only;
 * -EOPNOTSUPP elsewhere: use store_create_disk). Nothing of the base is copied, and the
 * base must stay unchanged for as long as the overlay lives. BACKING_NAME is the name
 * written as the backing file, i.e. what QEMU will open, e.g. "/dev/fdset/7" when the caller
 * hands it the base as an fd: 1..1023 printable ASCII bytes (-EINVAL otherwise). SIZE 0 keeps
 * the image's size, a larger one is the guest's disk size, a smaller one is -EINVAL; it is
 * rounded up to 512 bytes. Needs only the margin free. Returns an O_RDWR fd of the overlay
 * in *FD. Such a disk is listed, cloned (the overlay is copied as it is), measured (logical
 * size = the guest's disk size) and removed like any other. */
int store_create_overlay(struct store *s, const char *name, uint64_t size, const char *base_image,
			 const char *backing_name, int *fd);

/* Clones disks/SRC into disks/DST atomically and returns an O_RDWR fd of the new disk.img.
 * btrfs: subvolume snapshot; reflink: FICLONE; copy: sparse copy (SEEK_DATA/SEEK_HOLE +
 * copy_file_range, needing the source's allocated bytes + margin). */
int store_clone_disk(struct store *s, const char *src, const char *dst, int *fd);

/* Removes disks/NAME: first renamed into .tmp/ (so it vanishes atomically), then deleted.
 * btrfs: BTRFS_IOC_SNAP_DESTROY; without CAP_SYS_ADMIN (and no user_subvol_rm_allowed) the
 * contents are unlinked and the empty subvolume rmdir'ed (kernel >= 4.18). If even that fails
 * the error is returned and the leftover stays in .tmp/ for the next reconcile. */
int store_remove_disk(struct store *s, const char *name);
/* The same for images/NAME. Disks made from it as copies, snapshots or reflinks keep their
 * bytes; while a qcow2 overlay reads through it, -EBUSY. */
int store_remove_image(struct store *s, const char *name);

/* Registers images/NAME/disk.img (mode 0444) from the bytes of SRCFD (reflinked when on the
 * same filesystem, else copied sparsely) and returns an O_RDONLY fd of it in *FD (FD may be
 * NULL). Needs SRCFD's allocated bytes + margin free. */
int store_import_image(struct store *s, const char *name, int srcfd, int *fd);

/* disks/NAME/disk.img (or disk.qcow2): *LOGICAL = size (an overlay's: the guest's disk size), *ALLOCATED = bytes
 * allocated (extents shared with a base or another clone are counted in full). */
int store_usage(struct store *s, const char *name, uint64_t *logical, uint64_t *allocated);
/* Bytes of disks/NAME's extents used by it alone, and shared with another disk or image
 * (reflinked or snapshotted), read from FIEMAP. */
int store_sharing(struct store *s, const char *name, uint64_t *exclusive, uint64_t *shared);

/* Bytes available to an unprivileged writer on the data filesystem (statvfs f_bavail). */
int store_free_bytes(struct store *s, uint64_t *avail);

/* Calls FN for each valid disk name under disks/ (order unspecified). */
int store_list_disks(struct store *s, void (*fn)(const char *name, void *arg), void *arg);
/* images/NAME/disk.img's size. */
int store_image_size(struct store *s, const char *name, uint64_t *size);
/* ... and under images/. */
int store_list_images(struct store *s, void (*fn)(const char *name, void *arg), void *arg);

#endif
