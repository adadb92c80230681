/* fcvm setup, demo image: a busybox tree (busybox-static's /bin/busybox and applet links) made
 * an OCI archive by the host's podman, in a private podman storage removed afterwards. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/setup.h"
#include "common/util.h"

#define IMAGE_FORMAT "fcvm-demo-1"
#define BUSYBOX	     "/bin/busybox"

static const char *const applets[] = {"sh",  "echo",  "cat",  "printf", "ls",	 "sleep", "env",
				      "id",  "httpd", "wget", "true",	"false", "head",  "tr",
				      "seq", "dd",    "stty", "tty",	"yes",	 "uname", "hostname"};
static const char *const tree_dirs[] = {"bin", "etc", "tmp", "proc", "sys", "dev", "root"};
static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
static const char group[] = "root:x:0:\nnogroup:x:65534:\n";

int image_inputs(struct setup_ctx *c, struct image_in *im)
{
	static char out[512];
	const char *q[] = {"dpkg-query", "-W", "-f", "${Version}", "busybox-static", NULL};
	struct run_opts ro = {.out = out, .outlen = sizeof(out)};
	memset(im, 0, sizeof(*im));
	if (setup_run(c, q, &ro) < 0 || !out[0] || access(BUSYBOX, X_OK) < 0) {
		setup_path(c->err.fix, sizeof(c->err.fix), "`apt-get install busybox-static`");
		setup_path(c->err.what, sizeof(c->err.what), "busybox-static is not installed");
		return -1;
	}
	setup_path(im->busybox_version, sizeof(im->busybox_version), "%s", out);
	struct hasher *h = hasher_new(IMAGE_FORMAT);
	hasher_add(h, im->busybox_version);
	for (size_t i = 0; i < ARRAY_LEN(applets); i++)
		hasher_add(h, applets[i]);
	hasher_add(h, passwd);
	hasher_add(h, group);
	hasher_add(h, FCVM_DEMO_REF);
	hasher_done(h, im->hash);
	setup_path(im->file, sizeof(im->file), "demo-%s.oci.tar", im->hash);
	return 0;
}

static int entry(struct archive *a, const char *name, mode_t mode, const char *link, const void *data, size_t n)
{
	struct archive_entry *e = archive_entry_new();
	int rc = 0;
	archive_entry_set_pathname(e, name);
	archive_entry_set_mode(e, mode);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_mtime(e, 0, 0);
	if (link)
		archive_entry_set_symlink(e, link);
	archive_entry_set_size(e, S_ISREG(mode) ? (la_int64_t)n : 0);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    (n && S_ISREG(mode) && archive_write_data(a, data, n) != (la_ssize_t)n))
		rc = -EIO;
	archive_entry_free(e);
	return rc;
}

/* The busybox tree as a tar (written directly: no tree on disk needed). */
static int write_tree_tar(struct setup_ctx *c, const char *path)
{
	int fd AUTOCLOSE = open(BUSYBOX, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *bb = NULL;
	int rc = 0;
	if (fd < 0 || fstat(fd, &st) < 0 || !(bb = malloc((size_t)st.st_size + 1)) ||
	    read(fd, bb, (size_t)st.st_size) != st.st_size) {
		free(bb);
		return setup_fail(c, "`apt-get install --reinstall busybox-static`", "reading %s: %s", BUSYBOX,
				  strerror(errno));
	}
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (archive_write_open_filename(a, path) != ARCHIVE_OK)
		rc = -EIO;
	for (size_t i = 0; rc == 0 && i < ARRAY_LEN(tree_dirs); i++)
		rc = entry(a, tree_dirs[i], S_IFDIR | (strcmp(tree_dirs[i], "tmp") ? 0755 : 01777), NULL, NULL, 0);
	if (rc == 0)
		rc = entry(a, "bin/busybox", S_IFREG | 0755, NULL, bb, (size_t)st.st_size);
	for (size_t i = 0; rc == 0 && i < ARRAY_LEN(applets); i++) {
		char name[64];
		setup_path(name, sizeof(name), "bin/%s", applets[i]);
		rc = entry(a, name, S_IFLNK | 0777, "busybox", NULL, 0);
	}
	if (rc == 0)
		rc = entry(a, "etc/passwd", S_IFREG | 0644, NULL, passwd, strlen(passwd));
	if (rc == 0)
		rc = entry(a, "etc/group", S_IFREG | 0644, NULL, group, strlen(group));
	if (rc < 0)
		setup_fail(c, NULL, "writing %s: %s", path, archive_error_string(a));
	if (archive_write_close(a) != ARCHIVE_OK && rc == 0)
		rc = setup_fail(c, NULL, "writing %s: %s", path, archive_error_string(a));
	archive_write_free(a);
	free(bb);
	return rc < 0 ? -1 : 0;
}

static int pad512(struct setup_ctx *c, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return setup_fail(c, NULL, "podman save wrote no %s", path);
	if (st.st_size % 512 && truncate(path, (st.st_size + 511) / 512 * 512) < 0)
		return setup_fail(c, NULL, "padding %s: %s", path, strerror(errno));
	return 0;
}

int image_build(struct setup_ctx *c, const struct image_in *im)
{
	char tmp[PATH_MAX], tar[PATH_MAX], out[PATH_MAX], sroot[PATH_MAX], srun[64];
	struct setup_err saved;
	int rc = -1;
	if (setup_mktemp(c, tmp, sizeof(tmp)) < 0)
		return -1;
	/* podman refuses a runroot longer than 50 characters: a short one in /tmp */
	snprintf(srun, sizeof(srun), "/tmp/fcvm-demo-XXXXXX");
	if (!mkdtemp(srun)) {
		setup_fail(c, "check that /tmp is writable", "mkdtemp %s: %s", srun, strerror(errno));
		srun[0] = 0;
		goto out;
	}
	setup_path(tar, sizeof(tar), "%s/tree.tar", tmp);
	setup_path(out, sizeof(out), "%s/demo.oci.tar", tmp);
	setup_path(sroot, sizeof(sroot), "%s/storage", tmp);
	const char *fix = "see podman's output above; the host's podman (`apt-get install podman`) makes the demo "
			  "image from a local busybox tree, nothing is pulled";
#define PODMAN "podman", "--root", sroot, "--runroot", srun, "--storage-driver", "vfs", "--events-backend", "none"
	const char *imp[] = {PODMAN, "import", "--change", "CMD [\"/bin/sh\"]", tar, FCVM_DEMO_REF, NULL};
	const char *save[] = {PODMAN, "save", "--format", "oci-archive", "-o", out, FCVM_DEMO_REF, NULL};
	const char *rmi[] = {PODMAN, "rmi", "-f", FCVM_DEMO_REF, NULL};
#undef PODMAN
	struct run_opts ro = {.progress = true};
	if (write_tree_tar(c, tar) < 0)
		goto out;
	if (setup_run(c, imp, &ro) < 0 || setup_run(c, save, &ro) < 0) {
		setup_path(c->err.fix, sizeof(c->err.fix), "%s", fix);
		goto out;
	}
	if (pad512(c, out) < 0)
		goto out;
	setup_run(c, rmi, &ro); /* the storage goes anyway */
	rc = setup_publish(c, out, im->file);
out:
	saved = c->err;
	if (geteuid() != 0 && access(sroot, F_OK) == 0) { /* rootless: files owned by sub-uids */
		const char *rm[] = {"podman", "unshare", "rm", "-rf", sroot, NULL};
		struct run_opts q = {.progress = false};
		setup_run(c, rm, &q);
	}
	setup_rmtree(tmp);
	if (srun[0])
		setup_rmtree(srun);
	c->err = saved;
	return rc;
}
