/* Snapshots: see snapshot.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/btrfs.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "helpers/stored/snapshot.h"
#include "helpers/stored/store_priv.h"
#include "proto/proto.h"

#define MEM_FILE   "mem"
#define STATE_FILE "state"
#define DISK_FILE  "disk.img"
#define IMAGE_FILE "image"
#define META_FILE  "meta"
#define META_MAX   2048

/* A snapshot being built: its tag and work directory under .tmp/. One VM is paused for
 * each, so there are few. */
#define PENDING_MAX 8
static struct pending {
	char tag[STORE_NAME_MAX + 1];
	char tname[96];
} pending[PENDING_MAX];

/* Sealed templates handed out, one per snapshot: every clone maps the same pages. */
#define TEMPLATES_MAX 32
static struct template
{
	char tag[STORE_NAME_MAX + 1];
	int fd;
	uint64_t ino; /* of snapshots/TAG/mem: a snapshot made again under the tag is another */
}
templates[TEMPLATES_MAX];

static struct pending *find_pending(const char *tag)
{
	for (size_t i = 0; i < PENDING_MAX; i++)
		if (pending[i].tag[0] && strcmp(pending[i].tag, tag) == 0)
			return &pending[i];
	return NULL;
}

static void forget_template(const char *tag)
{
	for (size_t i = 0; i < TEMPLATES_MAX; i++)
		if (templates[i].tag[0] && strcmp(templates[i].tag, tag) == 0) {
			close(templates[i].fd);
			templates[i].tag[0] = 0;
		}
}

int snap_begin(struct store *s, const char *tag, int *state_fd)
{
	struct pending *p = NULL;
	int r, dfd;

	if (!store_name_ok(tag) || !state_fd)
		return -EINVAL;
	if ((r = store_absent(s->snapshots, tag)) < 0)
		return r;
	if (find_pending(tag))
		return -EEXIST;
	for (size_t i = 0; i < PENDING_MAX && !p; i++)
		if (!pending[i].tag[0])
			p = &pending[i];
	if (!p)
		return -EBUSY;
	if ((r = store_need_space(s, 0)) < 0 || (r = store_tmp_name(p->tname, sizeof(p->tname), tag)) < 0 ||
	    (r = store_mk_obj_dir(s, p->tname)) < 0)
		return r;
	dfd = store_openat(s->tmp, p->tname, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
	r = dfd < 0 ? dfd : store_openat(dfd, STATE_FILE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	if (dfd >= 0)
		close(dfd);
	if (r < 0) {
		store_rm_tree(s->tmp, p->tname, 0);
		return r;
	}
	*state_fd = r;
	snprintf(p->tag, sizeof(p->tag), "%s", tag);
	return 0;
}

int snap_abort(struct store *s, const char *tag)
{
	struct pending *p = store_name_ok(tag) ? find_pending(tag) : NULL;
	if (!p)
		return -ENOENT;
	int r = store_rm_tree(s->tmp, p->tname, 0);
	p->tag[0] = 0;
	return r;
}

/* DIR/NAME from SRC (reflinked or copied sparsely), fsync'ed, mode 0400. */
static int put_file(struct store *s, int dir, const char *name, int src)
{
	int out = store_openat(dir, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	if (out < 0)
		return out;
	int r = store_clone_or_copy(s, src, out);
	if (!r && (fsync(out) < 0 || fchmod(out, 0400) < 0))
		r = -errno;
	close(out);
	return r;
}

static int write_meta(int dir, const struct snap_meta *m)
{
	char buf[META_MAX];
	int n = snprintf(buf, sizeof(buf),
			 "tag=%s\nvm=%s\nimage=%s\naccel=%s\nassets=%s\nnetwork=%s\nkind=%s\nowner=%" PRIu64
			 "\ncreated_ms=%" PRIu64 "\ncpu=%" PRIu64 "\nmem=%" PRIu64 "\n",
			 m->tag, m->vm, m->image, m->accel, m->assets, m->network, m->kind, m->owner, m->created_ms,
			 m->cpu, m->mem);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -E2BIG;
	int fd = store_openat(dir, META_FILE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0400);
	if (fd < 0)
		return fd;
	int r = pwrite(fd, buf, (size_t)n, 0) == n && fsync(fd) == 0 ? 0 : -EIO;
	close(fd);
	return r;
}

/* The fields as the schema has them: nothing that could break a line or the format. */
static bool meta_ok(const struct snap_meta *m)
{
	return store_name_ok(m->tag) && store_name_ok(m->vm) && store_name_ok(m->assets) &&
	       proto_str_ok(m->image, strnlen(m->image, sizeof(m->image)), SC_TEXT) && m->image[0] &&
	       !strchr(m->image, '\n') && (strcmp(m->accel, "tcg") == 0 || strcmp(m->accel, "kvm") == 0) &&
	       (strcmp(m->network, "none") == 0 || strcmp(m->network, "bridged") == 0 ||
		strcmp(m->network, "rootless") == 0) &&
	       (strcmp(m->kind, "user") == 0 || strcmp(m->kind, "cache") == 0) && m->cpu >= 1 && m->cpu <= 16 &&
	       m->mem >= 128 && m->mem <= 65536;
}

/* A btrfs subvolume read-only (or writable again, to remove it). Elsewhere nothing. */
static int set_readonly(int parent, const char *name, bool ro)
{
	int fd = store_openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
	struct statfs sf;
	struct stat st;
	uint64_t flags = 0;
	int r = 0;
	if (fd < 0)
		return fd;
	if (fstatfs(fd, &sf) == 0 && sf.f_type == BTRFS_SUPER_MAGIC && fstat(fd, &st) == 0 && st.st_ino == 256) {
		if (ioctl(fd, BTRFS_IOC_SUBVOL_GETFLAGS, &flags) < 0)
			r = -errno;
		flags = ro ? flags | BTRFS_SUBVOL_RDONLY : flags & ~(uint64_t)BTRFS_SUBVOL_RDONLY;
		if (!r && ioctl(fd, BTRFS_IOC_SUBVOL_SETFLAGS, &flags) < 0)
			r = -errno;
	}
	close(fd);
	return r;
}

static int open_disk(struct store *s, const char *disk)
{
	char path[96];
	snprintf(path, sizeof(path), "%.64s/" DISK_FILE, disk);
	return store_openat(s->disks, path, O_RDONLY | O_NOFOLLOW, 0);
}

int snap_commit(struct store *s, const struct snap_meta *m, const char *disk, int ram_fd, int image_fd)
{
	struct pending *p = store_name_ok(m->tag) ? find_pending(m->tag) : NULL;
	struct stat st;
	int r, dfd, diskfd = -1;

	if (!p)
		return -ENOENT;
	/* a refused commit discards its build: the caller begins again or gives up */
	if (!meta_ok(m) || !store_name_ok(disk)) {
		snap_abort(s, m->tag);
		return -EINVAL;
	}
	if (fstat(ram_fd, &st) < 0 || (uint64_t)st.st_size != m->mem << 20) {
		snap_abort(s, m->tag);
		return -EINVAL;
	}
	dfd = store_openat(s->tmp, p->tname, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
	r = dfd < 0 ? dfd : 0;
	/* the state QEMU wrote: read-only from now on */
	if (!r) {
		int state = store_openat(dfd, STATE_FILE, O_RDONLY | O_NOFOLLOW, 0);
		r = state < 0 ? state : fsync(state) < 0 || fchmod(state, 0400) < 0 ? -errno : 0;
		if (state >= 0)
			close(state);
	}
	if (!r && fstat(ram_fd, &st) == 0)
		r = store_need_space(s, (uint64_t)st.st_blocks * 512);
	if (!r)
		r = put_file(s, dfd, MEM_FILE, ram_fd);
	if (!r)
		r = diskfd = open_disk(s, disk);
	if (r >= 0)
		r = put_file(s, dfd, DISK_FILE, diskfd);
	if (!r)
		r = put_file(s, dfd, IMAGE_FILE, image_fd);
	if (!r)
		r = write_meta(dfd, m);
	if (diskfd >= 0)
		close(diskfd);
	if (dfd >= 0)
		close(dfd);
	if (!r) {
		forget_template(m->tag); /* a template of an older snapshot of this tag */
		r = store_publish(s, p->tname, s->snapshots, m->tag);
	}
	if (r < 0)
		store_rm_tree(s->tmp, p->tname, 0);
	p->tag[0] = 0;
	/* btrfs renames no read-only subvolume: read-only once in place */
	if (!r && (r = set_readonly(s->snapshots, m->tag, true)) < 0)
		snap_remove(s, m->tag);
	return r;
}

static int get_u64(const char *v, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-')
		return -EINVAL;
	*out = x;
	return 0;
}

/* snapshots/.used.TAG: the time it was last cloned, as decimal ms (a file of its own: a
 * snapshot is read-only, on btrfs a read-only subvolume) */
static void used_name(char *out, size_t n, const char *tag)
{
	snprintf(out, n, ".used.%.64s", tag);
}

/* PATH beneath DIR into buf, NUL-terminated: its length, or -errno (-EIO if empty). */
static ssize_t read_small(int dir, const char *path, char *buf, size_t n)
{
	int fd = store_openat(dir, path, O_RDONLY | O_NOFOLLOW, 0);
	if (fd < 0)
		return fd;
	ssize_t got = pread(fd, buf, n - 1, 0);
	close(fd);
	if (got <= 0)
		return -EIO;
	buf[got] = 0;
	return got;
}

static uint64_t used_ms(struct store *s, const char *tag, uint64_t fallback)
{
	char name[80], buf[24];
	uint64_t v;
	used_name(name, sizeof(name), tag);
	if (read_small(s->snapshots, name, buf, sizeof(buf)) < 0)
		return fallback;
	buf[strcspn(buf, "\n")] = 0;
	return get_u64(buf, &v) == 0 ? v : fallback;
}

static void mark_used(struct store *s, const char *tag)
{
	char name[80], buf[24];
	used_name(name, sizeof(name), tag);
	int fd = store_openat(s->snapshots, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return; /* the order of eviction only */
	int n = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)now_realtime_ms());
	if (pwrite(fd, buf, (size_t)n, 0) != n)
		log_err("stored: cannot mark snapshot '%s' used", tag);
	close(fd);
}

int snap_read_meta(struct store *s, const char *tag, struct snap_meta *m)
{
	char path[96], buf[META_MAX];
	if (!store_name_ok(tag))
		return -EINVAL;
	snprintf(path, sizeof(path), "%.64s/" META_FILE, tag);
	ssize_t n = read_small(s->snapshots, path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	memset(m, 0, sizeof(*m));
	int r = 0;
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line && !r; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, '=');
		if (!v)
			return -EINVAL;
		*v++ = 0;
		static const struct {
			const char *key;
			size_t off, len;
		} strs[] = {{"tag", offsetof(struct snap_meta, tag), sizeof(m->tag)},
			    {"vm", offsetof(struct snap_meta, vm), sizeof(m->vm)},
			    {"image", offsetof(struct snap_meta, image), sizeof(m->image)},
			    {"accel", offsetof(struct snap_meta, accel), sizeof(m->accel)},
			    {"assets", offsetof(struct snap_meta, assets), sizeof(m->assets)},
			    {"network", offsetof(struct snap_meta, network), sizeof(m->network)},
			    {"kind", offsetof(struct snap_meta, kind), sizeof(m->kind)}};
		bool known = false;
		for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]) && !known; i++)
			if (strcmp(line, strs[i].key) == 0) {
				known = true;
				if (snprintf((char *)m + strs[i].off, strs[i].len, "%s", v) >= (int)strs[i].len)
					r = -EINVAL;
			}
		if (known)
			continue;
		uint64_t *num = strcmp(line, "owner") == 0	  ? &m->owner
				: strcmp(line, "created_ms") == 0 ? &m->created_ms
				: strcmp(line, "cpu") == 0	  ? &m->cpu
				: strcmp(line, "mem") == 0	  ? &m->mem
								  : NULL;
		if (num)
			r = get_u64(v, num); /* unknown keys: a newer stored's, skipped */
	}
	if (!m->kind[0]) /* a snapshot from before kinds */
		snprintf(m->kind, sizeof(m->kind), "user");
	/* what a clone would be started from must be what the schema allows */
	if (!r && (!meta_ok(m) || strcmp(m->tag, tag) != 0))
		r = -EINVAL;
	if (!r)
		m->used_ms = used_ms(s, tag, m->created_ms);
	return r;
}

static int dup_fd(int fd)
{
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	return d < 0 ? -errno : d;
}

/* The template: snapshots/TAG/mem copied once into a memfd, then sealed for good. */
static int template_of(struct store *s, int sd, const struct snap_meta *m)
{
	struct stat st;
	int mem = store_openat(sd, MEM_FILE, O_RDONLY | O_NOFOLLOW, 0);
	if (mem < 0)
		return mem;
	if (fstat(mem, &st) < 0 || (uint64_t)st.st_size != m->mem << 20) {
		close(mem);
		return -EINVAL;
	}
	struct template *free_slot = NULL;
	for (size_t i = 0; i < TEMPLATES_MAX; i++) {
		if (templates[i].tag[0] && strcmp(templates[i].tag, m->tag) == 0 && templates[i].ino == st.st_ino) {
			close(mem);
			return dup_fd(templates[i].fd);
		}
		if (!templates[i].tag[0] && !free_slot)
			free_slot = &templates[i];
	}
	forget_template(m->tag);
	int fd = memfd_create("fcvm-template", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int r = fd < 0 ? -errno : store_sparse_copy(mem, fd);
	if (!r && fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		r = -errno;
	/* the pages live on in the memfd: the file's copy in the page cache is not needed */
	posix_fadvise(mem, 0, 0, POSIX_FADV_DONTNEED);
	close(mem);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	if (free_slot) {
		snprintf(free_slot->tag, sizeof(free_slot->tag), "%s", m->tag);
		free_slot->fd = fd;
		free_slot->ino = st.st_ino;
		return dup_fd(fd);
	}
	return fd; /* the cache is full: this clone's alone */
}

/* disks/DISK for a clone: a reflink (btrfs, XFS) of the snapshot's disk.img; on a plain
 * filesystem a qcow2 overlay on it (nothing copied: QEMU reads through to disk.img, which
 * therefore stays until the overlay goes: snap_remove refuses meanwhile). */
static int clone_disk(struct store *s, const char *tag, const char *disk, int src, bool *overlay, int *fd)
{
	char tname[96], record[96];
	int r;
	*overlay = s->backend == STORE_COPY;
	if (*overlay) {
		snprintf(record, sizeof(record), "snapshots/%s", tag);
		/* QEMU gets disk.img as a node of its own (backing=): the name is never opened */
		return store_overlay_on(s, disk, 0, src, record, "fcvm-snapshot-disk", fd);
	}
	if ((r = store_absent(s->disks, disk)) < 0 || (r = store_tmp_name(tname, sizeof(tname), disk)) < 0 ||
	    (r = store_mk_obj_dir(s, tname)) < 0)
		return r;
	int dfd = store_openat(s->tmp, tname, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
	int out = dfd < 0 ? dfd : store_openat(dfd, DISK_FILE, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	r = out < 0 ? out : store_clone_or_copy(s, src, out);
	if (dfd >= 0)
		close(dfd);
	if (!r && (fsync(out) < 0 || fchmod(out, 0600) < 0))
		r = -errno;
	if (!r)
		r = store_publish(s, tname, s->disks, disk);
	if (r < 0) {
		if (out >= 0)
			close(out);
		store_rm_tree(s->tmp, tname, 0);
		return r;
	}
	*fd = out;
	return 0;
}

int snap_open(struct store *s, const char *tag, const char *disk, struct snap_meta *m, int fds[SNAP_OPEN_FDS],
	      bool *overlay)
{
	int r, sd;

	for (int i = 0; i < SNAP_OPEN_FDS; i++)
		fds[i] = -1;
	if (!store_name_ok(tag) || !store_name_ok(disk))
		return -EINVAL;
	if ((r = snap_read_meta(s, tag, m)) < 0)
		return r;
	sd = store_openat(s->snapshots, tag, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
	if (sd < 0)
		return sd;
	r = fds[0] = template_of(s, sd, m);
	if (r >= 0)
		r = fds[1] = store_openat(sd, STATE_FILE, O_RDONLY | O_NOFOLLOW, 0);
	if (r >= 0)
		r = fds[3] = store_openat(sd, IMAGE_FILE, O_RDONLY | O_NOFOLLOW, 0);
	if (r >= 0)
		r = fds[4] = store_openat(sd, DISK_FILE, O_RDONLY | O_NOFOLLOW, 0);
	close(sd);
	if (r >= 0)
		r = clone_disk(s, tag, disk, fds[4], overlay, &fds[2]);
	if (r >= 0)
		mark_used(s, tag);
	if (r < 0) {
		for (int i = 0; i < SNAP_OPEN_FDS; i++) {
			if (fds[i] >= 0)
				close(fds[i]);
			fds[i] = -1;
		}
		return r;
	}
	return 0;
}

int snap_remove(struct store *s, const char *tag)
{
	char tname[96];
	int r;

	if (!store_name_ok(tag))
		return -EINVAL;
	if ((r = store_absent(s->snapshots, tag)) == 0)
		return -ENOENT;
	if (r != -EEXIST)
		return r;
	snprintf(tname, sizeof(tname), "snapshots/%s", tag);
	if ((r = store_base_in_use(s, tname)) != 0)
		return r < 0 ? r : -EBUSY; /* a clone's overlay reads through its disk */
	if ((r = store_tmp_name(tname, sizeof(tname), tag)) < 0)
		return r;
	/* writable again (btrfs: a read-only subvolume is neither renamed nor emptied), out of
	 * sight (atomically), then deleted */
	if ((r = set_readonly(s->snapshots, tag, false)) < 0)
		return r;
	if (renameat2(s->snapshots, tag, s->tmp, tname, RENAME_NOREPLACE) < 0)
		return -errno;
	forget_template(tag);
	char used[80];
	used_name(used, sizeof(used), tag);
	unlinkat(s->snapshots, used, 0);
	return store_rm_tree(s->tmp, tname, 0);
}

int snap_usage_of(struct store *s, const char *tag, struct snap_usage *u)
{
	static const char *const files[] = {MEM_FILE, STATE_FILE, DISK_FILE, IMAGE_FILE};
	uint64_t *out[] = {&u->mem, &u->state, &u->disk, &u->image};
	int sd = store_name_ok(tag) ? store_openat(s->snapshots, tag, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0) : -EINVAL;
	if (sd < 0)
		return sd;
	memset(u, 0, sizeof(*u));
	for (size_t i = 0; i < 4; i++) {
		struct stat st;
		if (fstatat(sd, files[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
			*out[i] = (uint64_t)st.st_blocks * 512;
			u->total += *out[i];
		}
	}
	close(sd);
	return 0;
}

int snap_list(struct store *s, void (*fn)(const char *tag, void *arg), void *arg)
{
	return store_list_objs(s, "snapshots", fn, arg);
}
