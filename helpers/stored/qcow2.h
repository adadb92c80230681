/* A minimal qcow2 (version 3) writer: an empty overlay on a backing file, so QEMU can run a
 * VM disk as copy-on-write over a read-only base where the filesystem cannot share extents
 * (stored's copy backend). No qemu-img: the few metadata clusters are written here.
 *
 * Layout (64 KiB clusters): cluster 0 header + backing-format extension + backing name,
 * cluster 1 refcount table, cluster 2 its only refcount block (16-bit refcounts), clusters
 * 3.. the all-zero L1 table. Every metadata cluster has refcount 1; no L2 table exists, so
 * every guest read falls through to the backing file until the guest writes. */
#ifndef FCVM_QCOW2_H
#define FCVM_QCOW2_H

#include <stddef.h>
#include <stdint.h>

#define QCOW2_CLUSTER_BITS 16
#define QCOW2_CLUSTER_SIZE (1ULL << QCOW2_CLUSTER_BITS)
/* The backing file name's limit in the qcow2 spec. */
#define QCOW2_BACKING_MAX 1023
/* QEMU refuses L1 tables above 32 MiB (4 Mi entries of 512 MiB each): 2 PiB. */
#define QCOW2_MAX_SIZE (1ULL << 51)

/* 1 when NAME is usable as a backing file name: 1..QCOW2_BACKING_MAX printable ASCII bytes
 * (no newline or other control byte). */
int qcow2_backing_name_ok(const char *name);

/* Number of L1 entries for a virtual SIZE: ceil(SIZE / (cluster * cluster/8)). */
uint64_t qcow2_l1_entries(uint64_t size);

/* Writes the overlay into FD, which must be an empty regular file open for writing (with
 * pwrite; the file offset is not used). SIZE: virtual size, a multiple of 512, at most
 * QCOW2_MAX_SIZE. BACKING_NAME: what QEMU opens as the backing file; BACKING_FORMAT: its
 * driver ("raw"), 1..16 printable bytes. Does not fsync. 0 or -errno (-EINVAL for bad
 * arguments, -ENOTEMPTY if FD is not empty). */
int qcow2_write_overlay(int fd, uint64_t size, const char *backing_name, const char *backing_format);

/* Reads the virtual size from the header of the qcow2 image FD: 0 or -errno (-EINVAL when it
 * is not a qcow2 image). */
int qcow2_read_size(int fd, uint64_t *size);

#endif
