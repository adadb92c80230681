/* qcow2 overlay writer: see qcow2.h. Follows QEMU's docs/interop/qcow2.txt (version 3); all
 * integers on disk are big-endian. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers/stored/qcow2.h"

#define QCOW2_MAGIC	   0x514649fbU /* "QFI\xfb" */
#define QCOW2_VERSION	   3
#define HEADER_LENGTH	   104 /* version 3 header without the optional compression type */
#define REFCOUNT_ORDER	   4   /* 16-bit refcounts */
#define EXT_BACKING_FORMAT 0xe2792acaU
#define EXT_END		   0
#define FORMAT_MAX	   16
/* Refcount entries in one refcount block: cluster / (refcount bits / 8). */
#define REFBLOCK_ENTRIES (QCOW2_CLUSTER_SIZE / 2)
/* Fixed cluster indexes; the L1 table follows. */
#define REFTABLE_CLUSTER 1
#define REFBLOCK_CLUSTER 2
#define L1_CLUSTER	 3
/* L1 clusters of a QCOW2_MAX_SIZE image: 4 Mi entries of 8 bytes. */
#define MAX_L1_CLUSTERS (QCOW2_MAX_SIZE / (QCOW2_CLUSTER_SIZE * (QCOW2_CLUSTER_SIZE / 8)) * 8 / QCOW2_CLUSTER_SIZE)

static void be16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void be32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static void be64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd64(const unsigned char *p)
{
	return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

static int printable(const char *s, size_t max)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++) {
		if (n >= max || (unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
			return 0;
	}
	return n > 0;
}

int qcow2_backing_name_ok(const char *name)
{
	return printable(name, QCOW2_BACKING_MAX);
}

uint64_t qcow2_l1_entries(uint64_t size)
{
	/* one L2 table (a cluster of 8-byte entries) maps cluster_size * cluster_size/8 bytes */
	const uint64_t per_l2 = QCOW2_CLUSTER_SIZE * (QCOW2_CLUSTER_SIZE / 8);

	return size / per_l2 + (size % per_l2 != 0);
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const unsigned char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int qcow2_write_overlay(int fd, uint64_t size, const char *backing_name, const char *backing_format)
{
	/* header, one extension, the end marker and the name all fit well inside cluster 0 */
	unsigned char hdr[HEADER_LENGTH + 8 + FORMAT_MAX + 8 + QCOW2_BACKING_MAX];
	unsigned char ent[8];
	unsigned char refs[2 * (L1_CLUSTER + MAX_L1_CLUSTERS)];
	size_t namelen, fmtlen, off;
	uint64_t l1, l1_clusters, nclusters;
	struct stat st;
	int r;

	if (size % 512 || size > QCOW2_MAX_SIZE || !qcow2_backing_name_ok(backing_name) ||
	    !printable(backing_format, FORMAT_MAX))
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size != 0)
		return -ENOTEMPTY;
	namelen = strlen(backing_name);
	fmtlen = strlen(backing_format);
	l1 = qcow2_l1_entries(size);
	/* at least one (zero) L1 cluster even for an empty image, so its offset is a real cluster */
	l1_clusters = (l1 * 8 + QCOW2_CLUSTER_SIZE - 1) / QCOW2_CLUSTER_SIZE;
	if (!l1_clusters)
		l1_clusters = 1;
	/* 2 PiB needs 512 L1 clusters: one refcount block (32 Ki entries) covers them all */
	nclusters = L1_CLUSTER + l1_clusters;
	if (l1_clusters > MAX_L1_CLUSTERS || nclusters > REFBLOCK_ENTRIES)
		return -EINVAL;

	memset(hdr, 0, sizeof(hdr));
	off = HEADER_LENGTH;
	/* header extension: backing file format; data padded to a multiple of 8 */
	be32(hdr + off, EXT_BACKING_FORMAT);
	be32(hdr + off + 4, (uint32_t)fmtlen);
	memcpy(hdr + off + 8, backing_format, fmtlen);
	off += 8 + (fmtlen + 7) / 8 * 8;
	/* end of the header extension area */
	be32(hdr + off, EXT_END);
	be32(hdr + off + 4, 0);
	off += 8;
	/* the backing file name (not NUL-terminated), right after the extensions */
	memcpy(hdr + off, backing_name, namelen);

	be32(hdr + 0, QCOW2_MAGIC);
	be32(hdr + 4, QCOW2_VERSION);
	be64(hdr + 8, off);		   /* backing_file_offset */
	be32(hdr + 16, (uint32_t)namelen); /* backing_file_size */
	be32(hdr + 20, QCOW2_CLUSTER_BITS);
	be64(hdr + 24, size);
	be32(hdr + 32, 0); /* crypt_method: none */
	be32(hdr + 36, (uint32_t)l1);
	be64(hdr + 40, L1_CLUSTER * QCOW2_CLUSTER_SIZE);
	be64(hdr + 48, REFTABLE_CLUSTER * QCOW2_CLUSTER_SIZE);
	be32(hdr + 56, 1); /* refcount_table_clusters */
	be32(hdr + 60, 0); /* nb_snapshots */
	be64(hdr + 64, 0); /* snapshots_offset */
	be64(hdr + 72, 0); /* incompatible_features */
	be64(hdr + 80, 0); /* compatible_features */
	be64(hdr + 88, 0); /* autoclear_features */
	be32(hdr + 96, REFCOUNT_ORDER);
	be32(hdr + 100, HEADER_LENGTH);
	off += namelen;

	/* the file gets its full length first: the L1 table and the rest read back as zeros */
	if (ftruncate(fd, (off_t)(nclusters * QCOW2_CLUSTER_SIZE)) < 0)
		return -errno;
	/* refcount block: every cluster in the file (all metadata) is used once */
	for (uint64_t i = 0; i < nclusters; i++)
		be16(refs + 2 * i, 1);
	if ((r = pwrite_all(fd, refs, 2 * nclusters, REFBLOCK_CLUSTER * QCOW2_CLUSTER_SIZE)) < 0)
		return r;
	/* refcount table: its first entry points at the refcount block */
	be64(ent, REFBLOCK_CLUSTER * QCOW2_CLUSTER_SIZE);
	if ((r = pwrite_all(fd, ent, sizeof(ent), REFTABLE_CLUSTER * QCOW2_CLUSTER_SIZE)) < 0)
		return r;
	/* the header last: until it is written the file is no qcow2 image at all */
	return pwrite_all(fd, hdr, off, 0);
}

int qcow2_read_size(int fd, uint64_t *size)
{
	unsigned char h[32];
	ssize_t n;

	do
		n = pread(fd, h, sizeof(h), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof(h) || rd32(h) != QCOW2_MAGIC || rd32(h + 4) < 2)
		return -EINVAL;
	*size = rd64(h + 24);
	return 0;
}
