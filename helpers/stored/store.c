/* stored's storage core: see store.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helpers/stored/qcow2.h"
#include "helpers/stored/store.h"
#include "helpers/stored/store_priv.h"
#include "proto/proto.h"

#define DISK_FILE "disk.img"
/* A disk made by store_create_overlay holds this instead of DISK_FILE. */
#define OVERLAY_FILE "disk.qcow2"
/* btrfs gives the root directory of every subvolume this inode number. */
#define BTRFS_SUBVOL_INO 256
/* Leftovers in .tmp/ nest at most a few levels; deeper trees are not ours. */
#define RM_MAX_DEPTH 8

const char *store_backend_name(enum store_backend b)
{
	switch (b) {
	case STORE_BTRFS:
		return "btrfs";
	case STORE_REFLINK:
		return "reflink";
	case STORE_COPY:
		return "copy";
	}
	return "?";
}

int store_name_ok(const char *name)
{
	/* the protocol's identifier rule ([A-Za-z0-9][A-Za-z0-9_.-]*, not "." or ".."): the same
	 * check the decoder made, made again here because stored trusts no caller */
	size_t n = name ? strnlen(name, STORE_NAME_MAX + 1) : 0;
	return n > 0 && n <= STORE_NAME_MAX && proto_str_ok(name, n, SC_IDENT);
}

int store_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
	    /* RESOLVE_NO_SYMLINKS already refuses a symlink at the last component, with ELOOP;
	     * O_NOFOLLOW|O_DIRECTORY would turn that into a misleading ENOTDIR. */
	    .flags = (uint64_t)((flags & ~O_NOFOLLOW) | O_CLOEXEC),
	    .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	long fd;

	do
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN); /* RESOLVE_* lookups may race a rename: retry */
	return fd < 0 ? -errno : (int)fd;
}

static void xclose(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* NAME.<16 hex digits> for a unique entry under .tmp/ */
int store_tmp_name(char *buf, size_t len, const char *name)
{
	uint64_t r;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		return -EIO;
	snprintf(buf, len, "%s.%016llx", name, (unsigned long long)r);
	return 0;
}

static int is_btrfs_subvol(int fd)
{
	struct statfs sf;
	struct stat st;

	return fstatfs(fd, &sf) == 0 && sf.f_type == BTRFS_SUPER_MAGIC && fstat(fd, &st) == 0 &&
	       st.st_ino == BTRFS_SUBVOL_INO && S_ISDIR(st.st_mode);
}

/* --- btrfs: raw ioctls ------------------------------------------------------------------- */

static int btrfs_subvol_create(int parent, const char *name)
{
	struct btrfs_ioctl_vol_args a;

	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", name);
	return ioctl(parent, BTRFS_IOC_SUBVOL_CREATE, &a) < 0 ? -errno : 0;
}

static int btrfs_snapshot(int srcsubvol, int parent, const char *name)
{
	struct btrfs_ioctl_vol_args_v2 a;

	memset(&a, 0, sizeof(a));
	a.fd = srcsubvol;
	snprintf(a.name, sizeof(a.name), "%s", name);
	return ioctl(parent, BTRFS_IOC_SNAP_CREATE_V2, &a) < 0 ? -errno : 0;
}

static int btrfs_subvol_destroy(int parent, const char *name)
{
	struct btrfs_ioctl_vol_args a;

	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", name);
	return ioctl(parent, BTRFS_IOC_SNAP_DESTROY, &a) < 0 ? -errno : 0;
}

/* --- removal ------------------------------------------------------------------------------ */

/* Removes every entry of the directory dfd (taken: closed here). First error wins. */
static int rm_entries(int dfd, int depth)
{
	struct dirent *e;
	int r = 0;
	DIR *d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int rr = store_rm_tree(dirfd(d), e->d_name, depth);
		if (rr < 0 && !r)
			r = rr;
	}
	closedir(d);
	return r;
}

/* Removes PARENT/NAME whatever it is (a symlink is unlinked, never followed). Subvolumes are
 * destroyed by ioctl, or emptied and rmdir'ed when that is not permitted. */
int store_rm_tree(int parent, const char *name, int depth)
{
	struct stat st;
	int dfd, r;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(parent, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	if (depth > RM_MAX_DEPTH)
		return -ELOOP;
	dfd = store_openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
	if (dfd < 0)
		return dfd;
	if (is_btrfs_subvol(dfd) && btrfs_subvol_destroy(parent, name) == 0) {
		close(dfd);
		return 0;
	}
	if ((r = rm_entries(dfd, depth + 1)) < 0)
		return r;
	/* On an (emptied) btrfs subvolume rmdir deletes it too, without CAP_SYS_ADMIN. */
	return unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

int store_reconcile(struct store *s)
{
	int dfd = store_openat(s->root, ".tmp", O_RDONLY | O_DIRECTORY, 0);
	if (dfd < 0)
		return dfd;
	return rm_entries(dfd, 0);
}

/* --- data copy ---------------------------------------------------------------------------- */

static int copy_range(int in, int out, off_t off, off_t end)
{
	static char buf[1 << 16];
	int use_cfr = 1;

	while (off < end) {
		size_t want = (size_t)(end - off);
		ssize_t n;

		if (use_cfr) {
			loff_t io = off, oo = off;

			n = copy_file_range(in, &io, out, &oo, want, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS)) {
				use_cfr = 0;
				continue;
			}
		} else {
			n = pread(in, buf, want < sizeof(buf) ? want : sizeof(buf), off);
			if (n > 0 && pwrite(out, buf, (size_t)n, off) != n)
				return errno ? -errno : -EIO;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* source shrank under us */
		off += n;
	}
	return 0;
}

/* Copies IN into OUT (both at offset 0), keeping holes: only SEEK_DATA ranges are copied. */
int store_sparse_copy(int in, int out)
{
	struct stat st;
	off_t off = 0;
	int r;

	if (fstat(in, &st) < 0)
		return -errno;
	if (ftruncate(out, st.st_size) < 0)
		return -errno;
	while (off < st.st_size) {
		off_t data = lseek(in, off, SEEK_DATA), hole;

		if (data < 0) {
			if (errno == ENXIO)
				break;	       /* only a hole is left */
			if (errno == EINVAL) { /* no SEEK_DATA: copy everything */
				data = off;
				hole = st.st_size;
				goto copy;
			}
			return -errno;
		}
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if (hole > st.st_size)
			hole = st.st_size;
copy:
		r = copy_range(in, out, data, hole);
		if (r < 0)
			return r;
		off = hole;
	}
	return 0;
}

/* Reflink IN into OUT when the backend allows, else copy sparsely. */
int store_clone_or_copy(struct store *s, int in, int out)
{
	if (s->backend != STORE_COPY && ioctl(out, FICLONE, in) == 0)
		return 0;
	return store_sparse_copy(in, out);
}

/* --- space -------------------------------------------------------------------------------- */

int store_need_space(struct store *s, uint64_t bytes)
{
	uint64_t avail = 0;
	int r = store_free_bytes(s, &avail);

	if (r < 0)
		return r;
	if (bytes > UINT64_MAX - s->margin || avail < bytes + s->margin)
		return -ENOSPC;
	return 0;
}

/* --- open / layout / probe ---------------------------------------------------------------- */

static int ensure_dir(int root, const char *name, int *out)
{
	int fd;

	if (mkdirat(root, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	/* not O_PATH: the btrfs ioctls are issued on these */
	fd = store_openat(root, name, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	*out = fd;
	return 0;
}

static enum store_backend probe(int root, int tmp)
{
	struct statfs sf;
	char blk[4096];
	int a, b;
	enum store_backend be = STORE_COPY;

	if (fstatfs(root, &sf) == 0 && sf.f_type == BTRFS_SUPER_MAGIC)
		return STORE_BTRFS;
	/* O_TMPFILE leaves nothing behind even if we die here. */
	a = store_openat(tmp, ".", O_TMPFILE | O_RDWR, 0600);
	b = store_openat(tmp, ".", O_TMPFILE | O_RDWR, 0600);
	memset(blk, 0x5a, sizeof(blk));
	if (a >= 0 && b >= 0 && pwrite(a, blk, sizeof(blk), 0) == (ssize_t)sizeof(blk) && ioctl(b, FICLONE, a) == 0)
		be = STORE_REFLINK;
	xclose(&a);
	xclose(&b);
	return be;
}

int store_open(struct store *s, int rootfd)
{
	struct stat st;
	int r;

	memset(s, 0, sizeof(*s));
	s->root = rootfd;
	s->images = s->disks = s->snapshots = s->tmp = -1;
	s->margin = STORE_DEFAULT_MARGIN;
	if (fstat(rootfd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (!S_ISDIR(st.st_mode)) {
		r = -ENOTDIR;
		goto fail;
	}
	if ((r = ensure_dir(rootfd, "images", &s->images)) < 0 || (r = ensure_dir(rootfd, "disks", &s->disks)) < 0 ||
	    (r = ensure_dir(rootfd, "snapshots", &s->snapshots)) < 0 || (r = ensure_dir(rootfd, ".tmp", &s->tmp)) < 0)
		goto fail;
	s->backend = probe(rootfd, s->tmp);
	r = store_reconcile(s);
	if (r < 0)
		goto fail;
	return 0;
fail:
	store_close(s);
	return r;
}

void store_close(struct store *s)
{
	xclose(&s->images);
	xclose(&s->disks);
	xclose(&s->snapshots);
	xclose(&s->tmp);
	xclose(&s->root);
}

/* --- building objects --------------------------------------------------------------------- */

/* Makes an empty object directory .tmp/TNAME: a subvolume on btrfs. */
int store_mk_obj_dir(struct store *s, const char *tname)
{
	if (s->backend == STORE_BTRFS)
		return btrfs_subvol_create(s->tmp, tname);
	return mkdirat(s->tmp, tname, 0700) < 0 ? -errno : 0;
}

/* Moves .tmp/TNAME to DIR/NAME, failing with -EEXIST rather than replacing. */
int store_publish(struct store *s, const char *tname, int dir, const char *name)
{
	if (renameat2(s->tmp, tname, dir, name, RENAME_NOREPLACE) < 0)
		return -errno;
	/* The new entry survives a power cut only once its directory is on disk. The object is
	 * published either way: a failing directory flush is not reported as a failed build. */
	(void)fsync(dir);
	return 0;
}

/* The end of every build: when r is 0, publish .tmp/TNAME as DSTDIR/NAME and hand out
 * outfd in *fd (or close it); otherwise (or if publishing fails) discard both. */
static int publish_or_discard(struct store *s, int r, const char *tname, int dstdir, const char *name, int outfd,
			      int *fd)
{
	if (!r)
		r = store_publish(s, tname, dstdir, name);
	if (r < 0) {
		xclose(&outfd);
		store_rm_tree(s->tmp, tname, 0);
		return r;
	}
	if (fd)
		*fd = outfd;
	else
		close(outfd);
	return 0;
}

int store_absent(int dir, const char *name)
{
	struct stat st;

	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	return errno == ENOENT ? 0 : -errno;
}

/* Opens DIR/NAME/disk.img, or DIR/NAME/disk.qcow2 if there is no disk.img (an overlay;
 * *QCOW2 tells which when not NULL). No symlink anywhere on the way. */
static int open_obj_file(int dir, const char *name, int flags, int *qcow2)
{
	char path[128];
	int r;

	if (strlen(name) > 64)
		return -EINVAL;
	snprintf(path, sizeof(path), "%.64s/" DISK_FILE, name);
	r = store_openat(dir, path, flags | O_NOFOLLOW, 0);
	if (qcow2)
		*qcow2 = 0;
	if (r != -ENOENT)
		return r;
	snprintf(path, sizeof(path), "%.64s/" OVERLAY_FILE, name);
	r = store_openat(dir, path, flags | O_NOFOLLOW, 0);
	if (r >= 0 && qcow2)
		*qcow2 = 1;
	return r;
}

/* Fills .tmp/TNAME (already holding nothing, or a snapshot) from SRCFILE unless SNAPPED, sets
 * the size and mode, and returns in *FD the file opened with OFLAGS. */
static int finish_obj(struct store *s, const char *tname, const char *file, int srcfile, int snapped, uint64_t size,
		      mode_t mode, int oflags, int *fd)
{
	int dfd, out, r = 0;
	struct stat st;

	dfd = store_openat(s->tmp, tname, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
	if (dfd < 0)
		return dfd;
	if (snapped)
		out = store_openat(dfd, file, O_RDWR | O_NOFOLLOW, 0);
	else
		out = store_openat(dfd, file, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	if (out < 0) {
		r = out;
		goto out;
	}
	if (!snapped && srcfile >= 0) {
		r = store_clone_or_copy(s, srcfile, out);
		/* the rename publishes it: make sure a power cut cannot publish a hollow file */
		if (!r && fsync(out) < 0)
			r = -errno;
		if (r < 0)
			goto out;
	}
	if (fstat(out, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (size && (uint64_t)st.st_size > size) {
		r = -EINVAL;
		goto out;
	}
	if (size && (uint64_t)st.st_size < size && ftruncate(out, (off_t)size) < 0) {
		r = -errno;
		goto out;
	}
	if (fchmod(out, mode) < 0) {
		r = -errno;
		goto out;
	}
	if ((oflags & O_ACCMODE) == O_RDWR) {
		*fd = out;
		out = -1;
	} else {
		r = store_openat(dfd, file, oflags | O_NOFOLLOW, 0);
		if (r >= 0) {
			*fd = r;
			r = 0;
		}
	}
out:
	xclose(&out);
	close(dfd);
	return r;
}

/* Makes disks-like object .tmp/TNAME as a copy of SRCDIR/SRCNAME (a snapshot on btrfs when
 * that is a subvolume), else empty. *SNAPPED tells which; *SRCFILE gets the source file and
 * *FILE its name (disk.img, or disk.qcow2 for an overlay disk, which copies as it is). */
static int start_from(struct store *s, const char *tname, int srcdir, const char *srcname, int *snapped, int *srcfile,
		      const char **file)
{
	int sd, r;

	*snapped = 0;
	*srcfile = -1;
	*file = DISK_FILE;
	sd = store_openat(srcdir, srcname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
	if (sd < 0)
		return sd;
	r = store_openat(sd, DISK_FILE, O_RDONLY | O_NOFOLLOW, 0);
	if (r == -ENOENT && srcdir == s->disks) {
		*file = OVERLAY_FILE;
		r = store_openat(sd, OVERLAY_FILE, O_RDONLY | O_NOFOLLOW, 0);
	}
	if (r < 0) {
		close(sd);
		return r;
	}
	*srcfile = r;
	if (s->backend == STORE_BTRFS && is_btrfs_subvol(sd)) {
		r = btrfs_snapshot(sd, s->tmp, tname);
		*snapped = r == 0;
	} else {
		struct stat st;

		r = fstat(*srcfile, &st) < 0 ? -errno : 0;
		if (!r && s->backend == STORE_COPY)
			r = store_need_space(s, (uint64_t)st.st_blocks * 512);
		if (!r)
			r = store_mk_obj_dir(s, tname);
	}
	close(sd);
	if (r < 0)
		xclose(srcfile);
	return r;
}

static int make_obj(struct store *s, int dstdir, const char *name, uint64_t size, int srcdir, const char *srcname,
		    mode_t mode, int oflags, int *fd)
{
	char tname[96];
	const char *file = DISK_FILE;
	int r, snapped = 0, srcfile = -1, outfd = -1;

	if ((r = store_absent(dstdir, name)) < 0)
		return r;
	if ((r = store_need_space(s, 0)) < 0)
		return r;
	if ((r = store_tmp_name(tname, sizeof(tname), name)) < 0)
		return r;
	if (srcname)
		r = start_from(s, tname, srcdir, srcname, &snapped, &srcfile, &file);
	else
		r = store_mk_obj_dir(s, tname);
	if (r < 0)
		return r;
	/* an overlay's file size is not its disk size: it cannot be grown by truncation */
	if (strcmp(file, DISK_FILE) != 0 && size)
		r = -EINVAL;
	else
		r = finish_obj(s, tname, file, srcfile, snapped, size, mode, oflags, &outfd);
	xclose(&srcfile);
	return publish_or_discard(s, r, tname, dstdir, name, outfd, fd);
}

int store_create_disk(struct store *s, const char *name, uint64_t size, const char *base_image, int *fd)
{
	if (!store_name_ok(name) || (base_image && !store_name_ok(base_image)) || !fd)
		return -EINVAL;
	if (!base_image) {
		struct statvfs sv;

		if (!size || size > (uint64_t)INT64_MAX)
			return -EINVAL;
		if (fstatvfs(s->root, &sv) < 0)
			return -errno;
		/* Thin: only refuse what can never fit. */
		if (size > (uint64_t)sv.f_blocks * sv.f_frsize)
			return -ENOSPC;
	} else if (size > (uint64_t)INT64_MAX) {
		return -EINVAL;
	}
	return make_obj(s, s->disks, name, size, s->images, base_image, 0600, O_RDWR, fd);
}

/* An overlay names its image in disks/NAME/base: the image is not removed while it is read
 * through the overlay (store_remove_image). */
#define BASE_RECORD "base"

static int write_base_record(int dir, const char *image)
{
	int fd = store_openat(dir, BASE_RECORD, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0400);
	if (fd < 0)
		return fd;
	size_t n = strlen(image);
	int r = pwrite(fd, image, n, 0) == (ssize_t)n ? 0 : -EIO;
	close(fd);
	return r;
}

int store_list_objs(struct store *s, const char *sub, void (*fn)(const char *name, void *arg), void *arg);

struct base_scan {
	struct store *s;
	const char *image;
	int busy;
};

static void check_base(const char *disk, void *arg)
{
	struct base_scan *b = arg;
	char path[96], buf[128]; /* an image's name, or snapshots/TAG */
	snprintf(path, sizeof(path), "%.64s/" BASE_RECORD, disk);
	int fd = store_openat(b->s->disks, path, O_RDONLY | O_NOFOLLOW, 0);
	if (fd < 0)
		return;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0); /* the filter allows pread64, not read */
	close(fd);
	if (n > 0) {
		buf[n] = 0;
		b->busy |= strcmp(buf, b->image) == 0;
	}
}

int store_create_overlay(struct store *s, const char *name, uint64_t size, const char *base_image,
			 const char *backing_name, int *fd)
{
	char path[128];
	int base, r;

	if (!store_name_ok(name) || !base_image || !store_name_ok(base_image) || !qcow2_backing_name_ok(backing_name) ||
	    !fd || size > QCOW2_MAX_SIZE)
		return -EINVAL;
	if (s->backend != STORE_COPY)
		return -EOPNOTSUPP;
	snprintf(path, sizeof(path), "%.64s/" DISK_FILE, base_image);
	base = store_openat(s->images, path, O_PATH | O_NOFOLLOW, 0);
	if (base < 0)
		return base;
	r = store_overlay_on(s, name, size, base, base_image, backing_name, fd);
	close(base);
	return r;
}

int store_overlay_on(struct store *s, const char *name, uint64_t size, int base, const char *record,
		     const char *backing_name, int *fd)
{
	char tname[96];
	struct stat st;
	int r, dfd, outfd = -1;

	if (!store_name_ok(name) || !qcow2_backing_name_ok(backing_name) || !fd || size > QCOW2_MAX_SIZE)
		return -EINVAL;
	if (fstat(base, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (!size)
		size = (uint64_t)st.st_size;
	if (size < (uint64_t)st.st_size)
		return -EINVAL;
	/* QEMU sizes disks in 512-byte sectors; the tail of an odd-sized base reads as zeros */
	size = (size + 511) & ~511ULL;
	if (size > QCOW2_MAX_SIZE)
		return -EINVAL;
	if ((r = store_absent(s->disks, name)) < 0)
		return r;
	/* a few metadata clusters: only the margin is needed */
	if ((r = store_need_space(s, 0)) < 0)
		return r;
	if ((r = store_tmp_name(tname, sizeof(tname), name)) < 0)
		return r;
	if ((r = store_mk_obj_dir(s, tname)) < 0)
		return r;
	dfd = store_openat(s->tmp, tname, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
	r = dfd;
	if (dfd >= 0) {
		outfd = store_openat(dfd, OVERLAY_FILE, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
		r = outfd < 0 ? outfd : write_base_record(dfd, record);
		close(dfd);
	}
	if (!r)
		r = qcow2_write_overlay(outfd, size, backing_name, "raw");
	if (!r && fchmod(outfd, 0600) < 0)
		r = -errno;
	/* the rename publishes it: make sure a power cut cannot publish a headerless file */
	if (!r && fsync(outfd) < 0)
		r = -errno;
	return publish_or_discard(s, r, tname, s->disks, name, outfd, fd);
}

int store_clone_disk(struct store *s, const char *src, const char *dst, int *fd)
{
	if (!store_name_ok(src) || !store_name_ok(dst) || !fd)
		return -EINVAL;
	return make_obj(s, s->disks, dst, 0, s->disks, src, 0600, O_RDWR, fd);
}

/* Removes DIR/NAME (disks/ or images/): renamed into .tmp/ first (so it vanishes atomically),
 * then deleted. */
static int remove_obj(struct store *s, int dir, const char *name)
{
	char tname[96];
	int dfd, r;

	if (!store_name_ok(name))
		return -EINVAL;
	dfd = store_openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
	if (dfd < 0)
		return dfd;
	close(dfd);
	if ((r = store_tmp_name(tname, sizeof(tname), name)) < 0)
		return r;
	/* Even if a symlink was swapped in meanwhile, rm_tree only unlinks it. */
	if (renameat2(dir, name, s->tmp, tname, RENAME_NOREPLACE) < 0)
		return -errno;
	return store_rm_tree(s->tmp, tname, 0);
}

int store_remove_disk(struct store *s, const char *name)
{
	return remove_obj(s, s->disks, name);
}

int store_base_in_use(struct store *s, const char *record)
{
	struct base_scan b = {s, record, 0};
	int r = store_list_objs(s, "disks", check_base, &b);
	return r < 0 ? r : b.busy;
}

int store_remove_image(struct store *s, const char *name)
{
	if (!store_name_ok(name))
		return -EINVAL;
	int r = store_base_in_use(s, name);
	if (r < 0)
		return r;
	if (r)
		return -EBUSY; /* an overlay reads through it */
	return remove_obj(s, s->images, name);
}

int store_import_image(struct store *s, const char *name, int srcfd, int *fd)
{
	char tname[96];
	struct stat st;
	int r, outfd = -1;

	if (!store_name_ok(name))
		return -EINVAL;
	if (fstat(srcfd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((r = store_absent(s->images, name)) < 0)
		return r;
	/* The source may be on another filesystem, so assume a full copy. */
	if ((r = store_need_space(s, (uint64_t)st.st_blocks * 512)) < 0)
		return r;
	if ((r = store_tmp_name(tname, sizeof(tname), name)) < 0)
		return r;
	if ((r = store_mk_obj_dir(s, tname)) < 0)
		return r;
	r = finish_obj(s, tname, DISK_FILE, srcfd, 0, 0, 0444, O_RDONLY, &outfd);
	return publish_or_discard(s, r, tname, s->images, name, outfd, fd);
}

int store_usage(struct store *s, const char *name, uint64_t *logical, uint64_t *allocated)
{
	struct stat st;
	uint64_t vsize = 0;
	int f, qcow2, r = 0;

	if (!store_name_ok(name))
		return -EINVAL;
	f = open_obj_file(s->disks, name, O_RDONLY, &qcow2);
	if (f < 0)
		return f;
	if (fstat(f, &st) < 0)
		r = -errno;
	/* an overlay's logical size is the guest's disk size, from its header */
	else if (qcow2)
		r = qcow2_read_size(f, &vsize);
	else
		vsize = (uint64_t)st.st_size;
	close(f);
	if (r < 0)
		return r;
	if (logical)
		*logical = vsize;
	if (allocated)
		*allocated = (uint64_t)st.st_blocks * 512;
	return 0;
}

int store_sharing(struct store *s, const char *name, uint64_t *exclusive, uint64_t *shared)
{
	/* FIEMAP in batches; an extent flagged SHARED is also used by another file or snapshot */
	enum { BATCH = 256 };
	union {
		struct fiemap fm;
		char buf[sizeof(struct fiemap) + BATCH * sizeof(struct fiemap_extent)];
	} u;
	uint64_t start = 0, excl = 0, shrd = 0;
	int f, r = 0;

	if (!store_name_ok(name))
		return -EINVAL;
	f = open_obj_file(s->disks, name, O_RDONLY, NULL);
	if (f < 0)
		return f;
	for (bool last = false; !last;) {
		memset(&u, 0, sizeof(u));
		u.fm.fm_start = start;
		u.fm.fm_length = FIEMAP_MAX_OFFSET - start;
		u.fm.fm_extent_count = BATCH;
		if (ioctl(f, FS_IOC_FIEMAP, &u.fm) < 0) {
			r = -errno;
			break;
		}
		if (u.fm.fm_mapped_extents == 0)
			break;
		for (unsigned i = 0; i < u.fm.fm_mapped_extents; i++) {
			const struct fiemap_extent *e = &u.fm.fm_extents[i];
			if (e->fe_flags & FIEMAP_EXTENT_SHARED)
				shrd += e->fe_length;
			else
				excl += e->fe_length;
			start = e->fe_logical + e->fe_length;
			last = e->fe_flags & FIEMAP_EXTENT_LAST;
		}
	}
	close(f);
	if (r == 0) {
		*exclusive = excl;
		*shared = shrd;
	}
	return r;
}

int store_free_bytes(struct store *s, uint64_t *avail)
{
	struct statvfs sv;

	if (fstatvfs(s->root, &sv) < 0)
		return -errno;
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

/* Calls FN for each valid object name under SUB ("disks" or "images"). */
int store_list_objs(struct store *s, const char *sub, void (*fn)(const char *name, void *arg), void *arg)
{
	struct dirent *e;
	DIR *d;
	int dfd, r;

	dfd = store_openat(s->root, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
	if (dfd < 0)
		return dfd;
	d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	while ((e = readdir(d))) {
		struct stat st;

		if (!store_name_ok(e->d_name))
			continue;
		if (e->d_type == DT_UNKNOWN && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode))
			e->d_type = DT_DIR;
		if (e->d_type == DT_DIR)
			fn(e->d_name, arg);
	}
	closedir(d);
	return 0;
}

int store_list_disks(struct store *s, void (*fn)(const char *name, void *arg), void *arg)
{
	return store_list_objs(s, "disks", fn, arg);
}

int store_list_images(struct store *s, void (*fn)(const char *name, void *arg), void *arg)
{
	return store_list_objs(s, "images", fn, arg);
}

int store_image_size(struct store *s, const char *name, uint64_t *size)
{
	struct stat st;
	if (!store_name_ok(name))
		return -EINVAL;
	int fd = open_obj_file(s->images, name, O_PATH, NULL);
	if (fd < 0)
		return fd;
	int r = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (r == 0)
		*size = (uint64_t)st.st_size;
	return r;
}
