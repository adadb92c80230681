/* fcvm setup (guest assets): the driver. Works out each part's inputs and name, reuses what is
 * built, builds the rest (one line per step, the fix for any failure), then writes
 * DIR/current.json atomically. --check reports each part as present, stale or missing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/setup.h"
#include "common/util.h"

/* The demo image comes before the rootfs: the rootfs holds it pre-loaded (and hashes it). */
enum part { P_KERNEL, P_INITRAMFS, P_DEMO, P_ROOTFS, NPARTS };
static const char *const part_key[NPARTS] = {"kernel", "initramfs", "demo_image", "rootfs"};
static const char *const part_label[NPARTS] = {"kernel", "initramfs", "demo image", "rootfs"};
enum state { S_PRESENT, S_STALE, S_MISSING };
static const char *const state_name[] = {"present", "stale", "missing"};

struct plan {
	struct kernel_in k;
	struct initramfs_in i;
	struct rootfs_in r;
	struct image_in im;
	const char *want[NPARTS];    /* expected file names */
	char have[NPARTS][PATH_MAX]; /* what current.json names ("" if none) */
	bool built[NPARTS];	     /* the expected file exists */
	enum state st[NPARTS];
};

static void print_err(const struct setup_ctx *c, const char *step)
{
	fprintf(stderr, "fcvm setup: %s failed: %s\n", step, c->err.what);
	if (c->err.cmd[0])
		fprintf(stderr, "  command: %s\n", c->err.cmd);
	if (c->err.tail[0])
		fprintf(stderr, "  last output:\n%s\n", c->err.tail);
	if (c->err.fix[0])
		fprintf(stderr, "  fix: %s\n", c->err.fix);
}

static int inputs(struct setup_ctx *c, struct plan *p, const char *mirror)
{
	if (kernel_inputs(c, &p->k) < 0) {
		if (!kernel_from_manifest(c, &p->k))
			return -1;
		fprintf(stderr, "fcvm setup: warning: %s (fix: %s); keeping the kernel already built, %s\n",
			c->err.what, c->err.fix, p->k.file);
	}
	if (initramfs_inputs(c, &p->k, &p->i) < 0 || image_inputs(c, &p->im) < 0 ||
	    rootfs_inputs(c, mirror, &p->im, &p->r) < 0)
		return -1;
	p->want[P_KERNEL] = p->k.file;
	p->want[P_INITRAMFS] = p->i.file;
	p->want[P_ROOTFS] = p->r.file;
	p->want[P_DEMO] = p->im.file;
	return 0;
}

static void read_manifest(const struct setup_ctx *c, struct plan *p)
{
	char path[PATH_MAX];
	setup_path(path, sizeof(path), "%s/" FCVM_ASSETS_MANIFEST, c->dir);
	json_t *root = json_load_file(path, 0, NULL);
	bool ok = root && json_integer_value(json_object_get(root, "format")) == FCVM_ASSETS_FORMAT;
	for (int n = 0; n < NPARTS; n++) {
		const char *v = ok ? json_string_value(json_object_get(root, part_key[n])) : NULL;
		setup_path(p->have[n], sizeof(p->have[n]), "%s", v && !strchr(v, '/') ? v : "");
	}
	json_decref(root);
}

static void assess(const struct setup_ctx *c, struct plan *p)
{
	read_manifest(c, p);
	for (int n = 0; n < NPARTS; n++) {
		p->built[n] = setup_exists(c, p->want[n]) && (n != P_KERNEL || setup_exists(c, p->k.modules));
		if (p->built[n] && strcmp(p->have[n], p->want[n]) == 0)
			p->st[n] = S_PRESENT;
		else if (p->built[n] || (p->have[n][0] && setup_exists(c, p->have[n])))
			p->st[n] = S_STALE; /* the published one is out of date, or a newer one is unpublished */
		else
			p->st[n] = S_MISSING;
	}
}

static bool all_present(const struct plan *p)
{
	for (int n = 0; n < NPARTS; n++)
		if (p->st[n] != S_PRESENT)
			return false;
	return true;
}

static int report(const struct setup_ctx *c, const struct plan *p, bool json)
{
	bool ok = all_present(p);
	if (json) {
		json_t *parts = json_object();
		for (int n = 0; n < NPARTS; n++)
			json_object_set_new(parts, part_key[n],
					    json_pack("{s:s, s:s, s:s}", "state", state_name[p->st[n]], "want",
						      p->want[n], "have", p->have[n]));
		json_t *o = json_pack("{s:s, s:b, s:o, s:s}", "dir", c->dir, "current", ok, "parts", parts,
				      "kernel_package", p->k.pkg);
		char *s = json_dumps(o, JSON_COMPACT);
		puts(s ? s : "{}");
		free(s);
		json_decref(o);
	} else {
		printf("assets in %s:\n", c->dir);
		for (int n = 0; n < NPARTS; n++) {
			printf("  %-10s %-8s %s", part_label[n], state_name[p->st[n]], p->want[n]);
			if (p->st[n] == S_STALE && p->have[n][0] && strcmp(p->have[n], p->want[n]) != 0)
				printf(" (current.json has %s)", p->have[n]);
			putchar('\n');
		}
		printf(ok ? "all assets current\n" : "run `%sfcvm setup` to bring them up to date\n",
		       geteuid() ? "sudo " : "");
	}
	return ok ? EXIT_OK : EXIT_FAIL;
}

static int write_manifest(struct setup_ctx *c, const struct plan *p)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s}", "format", FCVM_ASSETS_FORMAT, "kernel",
			      p->want[P_KERNEL], "initramfs", p->want[P_INITRAMFS], "rootfs", p->want[P_ROOTFS],
			      "demo_image", p->want[P_DEMO], "demo_ref", FCVM_DEMO_REF, "kernel_version", p->k.release);
	char *s = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(o);
	setup_path(path, sizeof(path), "%s/" FCVM_ASSETS_MANIFEST, c->dir);
	setup_path(tmp, sizeof(tmp), "%s/.%s.tmp", c->dir, FCVM_ASSETS_MANIFEST);
	char *text = NULL;
	int rc = s && asprintf(&text, "%s\n", s) > 0 ? setup_write_file(tmp, text, 0644) : -ENOMEM;
	free(s);
	free(text);
	if (rc == 0) {
		int fd AUTOCLOSE = open(tmp, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			fsync(fd);
		rc = rename(tmp, path) < 0 ? -errno : 0;
	}
	if (rc < 0)
		return setup_fail(c, "check that the asset directory is writable", "writing %s: %s", path,
				  strerror(-rc));
	return 0;
}

/* Leftovers of an interrupted run (we hold the lock: nobody else is building). */
static void clean_tmp(const struct setup_ctx *c)
{
	DIR *d = opendir(c->dir);
	const struct dirent *de;
	char p[PATH_MAX];
	if (!d)
		return;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, ".tmp-", 5) == 0) {
			setup_path(p, sizeof(p), "%s/%s", c->dir, de->d_name);
			setup_rmtree(p);
		}
	closedir(d);
}

static int lock_dir(struct setup_ctx *c)
{
	char p[PATH_MAX];
	int rc = mkdir_p(c->dir, 0755);
	if (rc < 0)
		return setup_fail(c,
				  geteuid() ? "run `sudo fcvm setup`, or pass --assets DIR (or set FCVM_ASSETS)" : NULL,
				  "cannot create %s: %s", c->dir, strerror(-rc));
	chmod(c->dir, 0755);
	setup_path(p, sizeof(p), "%s/.lock", c->dir);
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return setup_fail(c,
				  geteuid() ? "run `sudo fcvm setup`, or pass --assets DIR (or set FCVM_ASSETS)" : NULL,
				  "%s: %s", p, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "waiting for another fcvm setup on %s\n", c->dir);
		flock(fd, LOCK_EX);
	}
	return fd; /* held until exit */
}

static int build_part(struct setup_ctx *c, struct plan *p, int n)
{
	switch (n) {
	case P_KERNEL:
		return kernel_build(c, &p->k);
	case P_INITRAMFS:
		return initramfs_build(c, &p->k, &p->i);
	case P_ROOTFS:
		return rootfs_build(c, &p->r);
	default:
		return image_build(c, &p->im);
	}
}

static const char *detail(const struct plan *p, int n, char *buf, size_t len)
{
	switch (n) {
	case P_KERNEL:
		setup_path(buf, len, "%s %s", p->k.pkg, p->k.version);
		break;
	case P_INITRAMFS:
		setup_path(buf, len, "agent %s", p->i.agent);
		break;
	case P_ROOTFS:
		setup_path(buf, len, "debootstrap from %s (%s)%s%s, %s pre-loaded", p->r.mirror, p->r.mirror_from,
			   p->r.proxy[0] ? " through " : "", p->r.proxy_shown, FCVM_DEMO_REF);
		break;
	default:
		setup_path(buf, len, "busybox-static %s", p->im.busybox_version);
	}
	return buf;
}

int setup_assets_main(const char *dir, bool check, bool json, const char *mirror)
{
	static struct plan p;
	static struct setup_ctx c;
	char label[64], det[PATH_MAX + 2048];
	int rc;

	c.tty = isatty(2) && !json;
	if (dir && *dir) {
		if (dir[0] == '/' || !getcwd(c.dir, sizeof(c.dir)))
			setup_path(c.dir, sizeof(c.dir), "%s", dir);
		else
			setup_path(c.dir + strlen(c.dir), sizeof(c.dir) - strlen(c.dir), "/%s", dir);
	} else if (assets_dir_default(c.dir, sizeof(c.dir)) < 0) {
		fprintf(stderr, "fcvm setup: no asset directory (set HOME or FCVM_ASSETS, or pass --assets DIR)\n");
		return EXIT_USAGE;
	}
	c.step_label = "[0/5] inputs";
	if (inputs(&c, &p, mirror) < 0) {
		print_err(&c, "working out the inputs");
		return EXIT_FAIL;
	}
	assess(&c, &p);
	if (check)
		return report(&c, &p, json);
	if (all_present(&p)) {
		printf("all assets current in %s\n", c.dir);
		return EXIT_OK;
	}
	memset(&c.err, 0, sizeof(c.err));
	if (!p.built[P_ROOTFS] && rootfs_source(&c, &p.r) < 0) { /* before any build: the mirror */
		print_err(&c, part_label[P_ROOTFS]);
		return EXIT_FAIL;
	}
	if (lock_dir(&c) < 0) {
		print_err(&c, "asset directory");
		return EXIT_FAIL;
	}
	assess(&c, &p); /* another setup may have finished while we waited */
	clean_tmp(&c);
	for (int n = 0; n < NPARTS; n++) {
		setup_path(label, sizeof(label), "[%d/5] %s", n + 1, part_label[n]);
		c.step_label = label;
		c.step_start_ms = now_mono_ms();
		memset(&c.err, 0, sizeof(c.err));
		if (p.built[n]) {
			printf("%s ... cached\n", label);
			continue;
		}
		if (c.tty) {
			fprintf(stderr, "%s ...", label);
			fflush(stderr);
		}
		rc = build_part(&c, &p, n);
		double secs = (double)(now_mono_ms() - c.step_start_ms) / 1000.0;
		if (c.tty)
			fprintf(stderr, "\r\033[K");
		if (rc < 0) {
			printf("%s ... FAILED after %.1f s\n", label, secs);
			fflush(stdout);
			print_err(&c, part_label[n]);
			return EXIT_FAIL;
		}
		p.built[n] = true;
		printf("%s ... built in %.1f s (%s)\n", label, secs, detail(&p, n, det, sizeof(det)));
		fflush(stdout);
	}
	c.step_label = "[5/5] manifest";
	if (write_manifest(&c, &p) < 0) {
		print_err(&c, "manifest");
		return EXIT_FAIL;
	}
	printf("[5/5] manifest ... %s/%s\n", c.dir, FCVM_ASSETS_MANIFEST);
	return EXIT_OK;
}
