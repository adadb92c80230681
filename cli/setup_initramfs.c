/* fcvm setup, initramfs: an uncompressed newc cpio (libarchive) with /init = the agent,
 * /modules/NN-name.ko from the kernel part, the mount points, and /dev/console. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cli/setup.h"
#include "common/util.h"

#define INITRAMFS_FORMAT "fcvm-initramfs-1"

/* FCVM_AGENT_BINARY, else fcvm-agent beside this program, else FCVM_LIBEXECDIR/fcvm-agent */
static int find_agent(char *out, size_t n)
{
	char self[PATH_MAX];
	const char *env = getenv("FCVM_AGENT_BINARY");
	ssize_t l;
	if (env && *env) {
		setup_path(out, n, "%s", env);
		return access(out, R_OK) == 0 ? 0 : -errno;
	}
	if ((l = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
		self[l] = 0;
		setup_path(out, n, "%s/fcvm-agent", dirname(self));
		if (access(out, R_OK) == 0)
			return 0;
	}
	setup_path(out, n, "%s/fcvm-agent", FCVM_LIBEXECDIR);
	return access(out, R_OK) == 0 ? 0 : -errno;
}

int initramfs_inputs(struct setup_ctx *c, const struct kernel_in *k, struct initramfs_in *i)
{
	char sum[65];
	int rc;
	memset(i, 0, sizeof(*i));
	if (find_agent(i->agent, sizeof(i->agent)) < 0)
		return setup_fail(c, "build it (`make`), install fcvm (`make install`), or set FCVM_AGENT_BINARY",
				  "the guest agent fcvm-agent is missing (looked beside fcvm and in %s)",
				  FCVM_LIBEXECDIR);
	if ((rc = sha256_file(i->agent, sum)) < 0)
		return setup_fail(c, NULL, "%s: %s", i->agent, strerror(-rc));
	struct hasher *h = hasher_new(INITRAMFS_FORMAT);
	hasher_add(h, k->hash); /* the kernel hash covers the module list too */
	hasher_add(h, sum);
	hasher_done(h, i->hash);
	setup_path(i->file, sizeof(i->file), "initramfs-%s.cpio", i->hash);
	return 0;
}

static int add_node(struct archive *a, const char *name, mode_t mode, dev_t rdev, const char *src)
{
	struct archive_entry *e = archive_entry_new();
	uint8_t buf[1 << 16];
	struct stat st;
	int fd AUTOCLOSE = -1, rc = 0;
	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_mode(e, mode);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_nlink(e, S_ISDIR(mode) ? 2 : 1);
	archive_entry_set_mtime(e, 0, 0);
	archive_entry_set_size(e, 0);
	if (S_ISCHR(mode))
		archive_entry_set_rdev(e, rdev);
	if (src) {
		if ((fd = open(src, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
			archive_entry_free(e);
			return -errno;
		}
		archive_entry_set_size(e, st.st_size);
	}
	if (archive_write_header(a, e) != ARCHIVE_OK)
		rc = -EIO;
	for (ssize_t r; rc == 0 && src && (r = read(fd, buf, sizeof(buf))) != 0;) {
		if (r < 0 || archive_write_data(a, buf, (size_t)r) != r)
			rc = -EIO;
	}
	archive_entry_free(e);
	return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int initramfs_build(struct setup_ctx *c, const struct kernel_in *k, const struct initramfs_in *i)
{
	char tmp[PATH_MAX], out[PATH_MAX], mods[PATH_MAX];
	static const char *const dirs[] = {"dev", "proc", "sys", "newroot", "modules"};
	struct dirent **ents = NULL;
	int n, rc = 0;

	setup_path(mods, sizeof(mods), "%s/%s", c->dir, k->modules);
	if ((n = scandir(mods, &ents, NULL, by_name)) < 0)
		return setup_fail(c, "remove the kernel-*.vmlinux in the asset directory and run `fcvm setup` again",
				  "%s: %s", mods, strerror(errno));
	if ((rc = setup_mktemp(c, tmp, sizeof(tmp))) < 0)
		goto out_free;
	setup_path(out, sizeof(out), "%s/initramfs.cpio", tmp);
	struct archive *a = archive_write_new();
	archive_write_set_format_cpio_newc(a);
	archive_write_add_filter_none(a);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open_filename(a, out) != ARCHIVE_OK) {
		rc = setup_fail(c, NULL, "%s: %s", out, archive_error_string(a));
		archive_write_free(a);
		goto out_tmp;
	}
	for (size_t d = 0; rc == 0 && d < ARRAY_LEN(dirs); d++)
		if ((rc = add_node(a, dirs[d], S_IFDIR | 0755, 0, NULL)) < 0)
			rc = setup_fail(c, NULL, "adding /%s: %s", dirs[d], archive_error_string(a));
	if (rc == 0 && (rc = add_node(a, "dev/console", S_IFCHR | 0600, makedev(5, 1), NULL)) < 0)
		rc = setup_fail(c, NULL, "adding /dev/console: %s", archive_error_string(a));
	if (rc == 0 && (rc = add_node(a, "init", S_IFREG | 0755, 0, i->agent)) < 0)
		rc = setup_fail(c, NULL, "adding %s as /init: %s", i->agent, archive_error_string(a));
	for (int m = 0; rc == 0 && m < n; m++) {
		char src[PATH_MAX], dst[300];
		size_t l = strlen(ents[m]->d_name);
		if (l < 4 || strcmp(ents[m]->d_name + l - 3, ".ko") != 0)
			continue;
		setup_path(src, sizeof(src), "%s/%s", mods, ents[m]->d_name);
		setup_path(dst, sizeof(dst), "modules/%s", ents[m]->d_name);
		if ((rc = add_node(a, dst, S_IFREG | 0644, 0, src)) < 0)
			rc = setup_fail(c, NULL, "adding %s: %s", src, archive_error_string(a));
	}
	if (archive_write_close(a) != ARCHIVE_OK && rc == 0)
		rc = setup_fail(c, "check free space in the asset directory", "%s: %s", out, archive_error_string(a));
	archive_write_free(a);
	if (rc == 0)
		rc = setup_publish(c, out, i->file);
out_tmp:
	setup_rmtree(tmp);
out_free:
	for (int m = 0; m < n; m++)
		free(ents[m]);
	free(ents);
	return rc < 0 ? -1 : 0;
}
