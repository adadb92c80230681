/* fcvm setup, kernel: the linux-image package linux-image-amd64 depends on, downloaded with
 * apt-get, read with libarchive (.deb = ar holding data.tar.xz): boot/vmlinuz-* decompressed to
 * an ELF vmlinux, and the modules the guest needs (with their dependencies from modules.dep,
 * deps first) as NN-name.ko in kernel-H.modules/. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/setup.h"
#include "common/util.h"
#include "cli/vmlinux.h"

#define KERNEL_FORMAT "fcvm-kernel-1"
#define MAX_MODS      64

/* In load order; a module absent from modules.dep is built in. */
static const char *const wanted_modules[] = {
    "virtio_ring",    "virtio", "virtio_mmio", "virtio_blk", "failover",       "net_failover", "virtio_net",
    "virtio_console", "crc16",	"mbcache",     "jbd2",	     "crc32c_generic", "ext4",	       "overlay",
};

/* Value of "Key: value" at the start of a line of text (the first stanza's). */
static bool field(const char *text, const char *key, char *out, size_t n)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (*p == '\n')
			return false; /* end of the first stanza */
		if (strncmp(p, key, kl) == 0 && p[kl] == ':') {
			p += kl + 1;
			while (*p == ' ')
				p++;
			size_t l = strcspn(p, "\n");
			if (l >= n)
				return false;
			memcpy(out, p, l);
			out[l] = 0;
			return true;
		}
	}
	return false;
}

static bool good_image_name(const char *s)
{
	size_t l = strlen(s);
	if (strncmp(s, "linux-image-6.1.", 16) != 0 || strstr(s, "cloud") || strstr(s, "-rt-"))
		return false;
	return (l > 6 && strcmp(s + l - 6, "-amd64") == 0) || (l > 15 && strcmp(s + l - 15, "-amd64-unsigned") == 0);
}

static void add_module_list(struct hasher *h)
{
	for (size_t i = 0; i < ARRAY_LEN(wanted_modules); i++)
		hasher_add(h, wanted_modules[i]);
}

int kernel_inputs(struct setup_ctx *c, struct kernel_in *k)
{
	static char out[1 << 16];
	const char *dep[] = {"apt-cache", "depends", "linux-image-amd64", NULL};
	const char *fix_apt = "run `apt-get update` (check /etc/apt/sources.list: fcvm needs Debian bookworm's "
			      "linux-image-amd64)";
	struct run_opts ro = {.out = out, .outlen = sizeof(out)};

	memset(k, 0, sizeof(*k));
	if (setup_run(c, dep, &ro) < 0) {
		setup_path(c->err.fix, sizeof(c->err.fix), "%s", fix_apt);
		return -1;
	}
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char name[128];
		if (sscanf(line, " |Depends: %127s", name) != 1 && sscanf(line, " Depends: %127s", name) != 1)
			continue;
		if (good_image_name(name) && (!k->pkg[0] || strverscmp(name, k->pkg) > 0))
			setup_path(k->pkg, sizeof(k->pkg), "%s", name);
	}
	if (!k->pkg[0])
		return setup_fail(c, fix_apt, "linux-image-amd64 depends on no linux-image-6.1.*-amd64");
	const char *show[] = {"apt-cache", "show", "--no-all-versions", k->pkg, NULL};
	if (setup_run(c, show, &ro) < 0) {
		setup_path(c->err.fix, sizeof(c->err.fix), "%s", fix_apt);
		return -1;
	}
	if (!field(out, "Version", k->version, sizeof(k->version)) ||
	    !field(out, "SHA256", k->sha256, sizeof(k->sha256)))
		return setup_fail(c, fix_apt, "apt-cache show %s: no Version or SHA256", k->pkg);
	setup_path(k->release, sizeof(k->release), "%s", k->pkg + strlen("linux-image-"));
	char *u = strstr(k->release, "-unsigned");
	if (u)
		*u = 0;
	struct hasher *h = hasher_new(KERNEL_FORMAT);
	hasher_add(h, k->pkg);
	hasher_add(h, k->version);
	hasher_add(h, k->sha256);
	add_module_list(h);
	hasher_done(h, k->hash);
	setup_path(k->file, sizeof(k->file), "kernel-%s.vmlinux", k->hash);
	setup_path(k->modules, sizeof(k->modules), "kernel-%s.modules", k->hash);
	return 0;
}

bool kernel_from_manifest(struct setup_ctx *c, struct kernel_in *k)
{
	char path[PATH_MAX], name[64] = "";
	FILE *f;
	setup_path(path, sizeof(path), "%s/" FCVM_ASSETS_MANIFEST, c->dir);
	if (!(f = fopen(path, "re")))
		return false;
	while (fgets(path, sizeof(path), f))
		if (sscanf(path, " \"kernel\": \"kernel-%16[0-9a-f].vmlinux\"", name) == 1)
			break;
	fclose(f);
	if (strlen(name) != SETUP_HASH_LEN)
		return false;
	memset(k, 0, sizeof(*k));
	memcpy(k->hash, name, SETUP_HASH_LEN + 1);
	setup_path(k->file, sizeof(k->file), "kernel-%s.vmlinux", k->hash);
	setup_path(k->modules, sizeof(k->modules), "kernel-%s.modules", k->hash);
	setup_path(path, sizeof(path), "%s/%s/release", c->dir, k->modules);
	if (!setup_exists(c, k->file) || !(f = fopen(path, "re")))
		return false;
	bool ok = fgets(k->release, sizeof(k->release), f) != NULL;
	fclose(f);
	k->release[strcspn(k->release, "\n")] = 0;
	snprintf(k->pkg, sizeof(k->pkg), "linux-image-%s", k->release);
	snprintf(k->version, sizeof(k->version), "(not checked: no apt index)");
	return ok && k->release[0];
}

/* ---- reading the .deb ---- */

struct deb {
	struct archive *outer, *inner;
	char buf[1 << 16];
};

static la_ssize_t outer_read(struct archive *a, void *data, const void **buf)
{
	struct deb *d = data;
	(void)a;
	la_ssize_t n = archive_read_data(d->outer, d->buf, sizeof(d->buf));
	*buf = d->buf;
	return n;
}

static void deb_close(struct deb *d)
{
	if (d->inner)
		archive_read_free(d->inner);
	if (d->outer)
		archive_read_free(d->outer);
	free(d);
}

/* Open the .deb's data.tar.* for reading entry by entry. */
static struct deb *deb_open(const char *path, char *err, size_t errlen)
{
	struct deb *d = calloc(1, sizeof(*d));
	struct archive_entry *e;
	if (!d)
		return NULL;
	d->outer = archive_read_new();
	archive_read_support_format_ar(d->outer);
	if (archive_read_open_filename(d->outer, path, 1 << 16) != ARCHIVE_OK) {
		setup_path(err, errlen, "%s: %s", path, archive_error_string(d->outer));
		deb_close(d);
		return NULL;
	}
	while (archive_read_next_header(d->outer, &e) == ARCHIVE_OK) {
		if (strncmp(archive_entry_pathname(e), "data.tar", 8) != 0)
			continue;
		d->inner = archive_read_new();
		archive_read_support_format_tar(d->inner);
		archive_read_support_filter_all(d->inner);
		if (archive_read_open(d->inner, d, NULL, outer_read, NULL) != ARCHIVE_OK) {
			setup_path(err, errlen, "%s: data.tar: %s", path, archive_error_string(d->inner));
			deb_close(d);
			return NULL;
		}
		return d;
	}
	setup_path(err, errlen, "%s: no data.tar in this .deb (%s)", path, archive_error_string(d->outer));
	deb_close(d);
	return NULL;
}

/* The current entry's data into a malloc'd buffer. */
static int read_entry(struct archive *a, struct archive_entry *e, uint8_t **out, size_t *outlen)
{
	size_t cap = archive_entry_size_is_set(e) ? (size_t)archive_entry_size(e) + 1 : 1 << 20, n = 0;
	uint8_t *buf = malloc(cap);
	la_ssize_t r;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		r = archive_read_data(a, buf + n, cap - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	if (r < 0) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*outlen = n;
	return 0;
}

/* "./lib/modules/V/kernel/x.ko" -> "kernel/x.ko" (the form modules.dep uses), else NULL */
static const char *mod_rel(const char *path, const char *release)
{
	const char *p = strstr(path, "lib/modules/");
	size_t rl = strlen(release);
	if (!p || strncmp(p + 12, release, rl) != 0 || p[12 + rl] != '/')
		return NULL;
	return p + 12 + rl + 1;
}

/* "kernel/fs/ext4/ext4.ko.xz" -> "ext4" (with '-' as '_') */
static void mod_name(const char *rel, char *out, size_t n)
{
	const char *b = strrchr(rel, '/');
	b = b ? b + 1 : rel;
	setup_path(out, n, "%s", b);
	char *dot = strstr(out, ".ko");
	if (dot)
		*dot = 0;
	for (char *p = out; *p; p++)
		if (*p == '-')
			*p = '_';
}

/* Every module in the package; the needed ones read into memory with their dependencies
 * (from .modinfo "depends=": Debian's package has no modules.dep, depmod makes it). */
struct mod {
	char *rel; /* kernel/.../x.ko[.xz] */
	char name[64];
	bool needed;
	uint8_t *data; /* decompressed .ko, once read */
	size_t len;
	char deps[512]; /* comma separated names */
	bool added;
};

struct modset {
	struct mod *m;
	size_t n, cap;
	size_t order[MAX_MODS]; /* load order, indexes into m */
	size_t norder;
};

static void modset_free(struct modset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->m[i].rel);
		free(s->m[i].data);
	}
	free(s->m);
}

static struct mod *mod_find(struct modset *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->m[i].name, name) == 0)
			return &s->m[i];
	return NULL;
}

static int mod_add(struct modset *s, const char *rel)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct mod *nm = realloc(s->m, cap * sizeof(*nm));
		if (!nm)
			return -ENOMEM;
		s->m = nm;
		s->cap = cap;
	}
	struct mod *m = &s->m[s->n];
	memset(m, 0, sizeof(*m));
	if (!(m->rel = strdup(rel)))
		return -ENOMEM;
	mod_name(rel, m->name, sizeof(m->name));
	s->n++;
	return 0;
}

/* "depends=a,b" out of the module's .modinfo strings */
static void mod_parse_deps(struct mod *m)
{
	static const char key[] = "depends=";
	const uint8_t *p = m->data, *end = m->data + m->len;
	m->deps[0] = 0;
	while (p && p < end) {
		p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1);
		if (!p)
			return;
		if (p == m->data || p[-1] == 0) { /* the start of a modinfo string */
			const uint8_t *v = p + sizeof(key) - 1, *z = memchr(v, 0, (size_t)(end - v));
			size_t l = z ? (size_t)(z - v) : 0;
			if (l < sizeof(m->deps)) {
				memcpy(m->deps, v, l);
				m->deps[l] = 0;
				for (char *q = m->deps; *q; q++)
					if (*q == '-')
						*q = '_';
			}
			return;
		}
		p += sizeof(key) - 1;
	}
}

static int order_add(struct modset *s, struct mod *m, int depth)
{
	char deps[512], *save = NULL;
	if (m->added)
		return 0;
	if (depth > 32)
		return -ELOOP;
	m->added = true;
	snprintf(deps, sizeof(deps), "%s", m->deps);
	for (char *t = strtok_r(deps, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		struct mod *d = mod_find(s, t);
		int rc = d ? order_add(s, d, depth + 1) : 0; /* not a module: built in */
		if (rc < 0)
			return rc;
	}
	if (s->norder >= MAX_MODS)
		return -E2BIG;
	s->order[s->norder++] = (size_t)(m - s->m);
	return 0;
}

static int write_all(const char *path, const void *buf, size_t n, mode_t mode)
{
	int fd AUTOCLOSE = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	const uint8_t *p = buf;
	if (fd < 0)
		return -errno;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return fsync(fd) < 0 ? -errno : 0;
}

static bool find_deb(const char *dir, char *out, size_t n)
{
	DIR *d = opendir(dir);
	const struct dirent *de;
	bool found = false;
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > 4 && strcmp(de->d_name + l - 4, ".deb") == 0) {
			setup_path(out, n, "%s/%s", dir, de->d_name);
			found = true;
		}
	}
	closedir(d);
	return found;
}

/* One pass over the package: with s->n == 0, list the modules and read vmlinuz; later, read
 * the needed modules not read yet. Returns how many modules it read, or -1. */
static int deb_pass(struct setup_ctx *c, const char *deb, const struct kernel_in *k, struct modset *s,
		    uint8_t **vmlinuz, size_t *vzlen)
{
	char err[1024], want_vz[128];
	struct archive_entry *e;
	bool listing = s->n == 0;
	int nread = 0;
	size_t pending = 0;
	struct deb *d = deb_open(deb, err, sizeof(err));
	if (!d)
		return setup_fail(c, "delete the asset directory's .tmp-* and run `fcvm setup` again", "%s", err);
	for (size_t i = 0; i < s->n; i++)
		pending += s->m[i].needed && !s->m[i].data;
	setup_path(want_vz, sizeof(want_vz), "boot/vmlinuz-%s", k->release);
	while ((listing || pending) && archive_read_next_header(d->inner, &e) == ARCHIVE_OK) {
		const char *path = archive_entry_pathname(e);
		const char *rel = mod_rel(path, k->release);
		size_t pl = strlen(path), wl = strlen(want_vz);
		if (listing && pl >= wl && strcmp(path + pl - wl, want_vz) == 0) {
			if (read_entry(d->inner, e, vmlinuz, vzlen) < 0)
				goto fail;
			continue;
		}
		if (!rel || !((pl > 3 && strcmp(path + pl - 3, ".ko") == 0) ||
			      (pl > 6 && strcmp(path + pl - 6, ".ko.xz") == 0)))
			continue;
		if (listing) {
			if (mod_add(s, rel) < 0)
				goto fail;
			continue;
		}
		struct mod *m = NULL;
		for (size_t i = 0; i < s->n && !m; i++)
			if (s->m[i].needed && !s->m[i].data && strcmp(s->m[i].rel, rel) == 0)
				m = &s->m[i];
		if (!m)
			continue;
		uint8_t *b = NULL;
		size_t bl = 0;
		if (read_entry(d->inner, e, &b, &bl) < 0)
			goto fail;
		if (strcmp(path + pl - 3, ".xz") == 0) {
			int rc = vmlinux_extract(b, bl, &m->data, &m->len); /* a module is an ELF too */
			free(b);
			if (rc < 0) {
				deb_close(d);
				return setup_fail(c, NULL, "module %s: cannot decompress", rel);
			}
		} else {
			m->data = b;
			m->len = bl;
		}
		mod_parse_deps(m);
		pending--;
		nread++;
	}
	deb_close(d);
	if (listing && (!*vmlinuz || s->n == 0))
		return setup_fail(c, "the package may be damaged: run `apt-get clean` and `fcvm setup` again",
				  "%s: no %s or no modules for %s", deb, want_vz, k->release);
	if (!listing && pending)
		return setup_fail(c, NULL, "%s: %zu modules could not be read", deb, pending);
	return nread;
fail:
	setup_path(err, sizeof(err), "%s", archive_error_string(d->inner) ? archive_error_string(d->inner) : "?");
	deb_close(d);
	return setup_fail(c, "the package may be damaged: run `apt-get clean` and `fcvm setup` again", "reading %s: %s",
			  deb, err);
}

/* The wanted modules and their dependencies, read; then the load order. */
static int collect_modules(struct setup_ctx *c, const char *deb, const struct kernel_in *k, struct modset *s,
			   uint8_t **vz, size_t *vzlen)
{
	int rc;
	if (deb_pass(c, deb, k, s, vz, vzlen) < 0)
		return -1;
	for (size_t w = 0; w < ARRAY_LEN(wanted_modules); w++) {
		struct mod *m = mod_find(s, wanted_modules[w]);
		if (m)
			m->needed = true;
	}
	for (int round = 0; round < 8; round++) {
		bool more = false;
		if (deb_pass(c, deb, k, s, vz, vzlen) < 0)
			return -1;
		for (size_t i = 0; i < s->n; i++) {
			char deps[512], *save = NULL;
			if (!s->m[i].data)
				continue;
			snprintf(deps, sizeof(deps), "%s", s->m[i].deps);
			for (char *t = strtok_r(deps, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				struct mod *d = mod_find(s, t);
				if (d && !d->needed)
					d->needed = more = true;
			}
		}
		if (!more)
			break;
	}
	for (size_t w = 0; w < ARRAY_LEN(wanted_modules); w++) {
		struct mod *m = mod_find(s, wanted_modules[w]);
		if (m && (rc = order_add(s, m, 0)) < 0)
			return setup_fail(c, NULL, "module dependencies of %s: %s", m->name, strerror(-rc));
	}
	return 0;
}

int kernel_build(struct setup_ctx *c, const struct kernel_in *k)
{
	char tmp[PATH_MAX], deb[PATH_MAX], spec[300], sum[65], mods[PATH_MAX], vmlinux[PATH_MAX], path[PATH_MAX];
	uint8_t *vz = NULL, *elf = NULL;
	size_t vzlen = 0, elflen = 0;
	struct modset set = {.m = NULL};
	int rc = -1, wr;

	if (setup_mktemp(c, tmp, sizeof(tmp)) < 0)
		return -1;
	setup_path(spec, sizeof(spec), "%s=%s", k->pkg, k->version);
	const char *dl[] = {"apt-get", "download", "-q", spec, NULL};
	struct run_opts ro = {.cwd = tmp, .progress = true};
	if (setup_run(c, dl, &ro) < 0) {
		setup_path(c->err.fix, sizeof(c->err.fix), "%s",
			   geteuid() ? "run `sudo fcvm setup` (apt-get download needs root here)"
				     : "check /etc/apt/sources.list and network access, then run `apt-get update`");
		size_t l = strlen(c->err.what);
		setup_path(c->err.what + l, sizeof(c->err.what) - l, ": apt-get could not download %s", spec);
		goto out;
	}
	if (!find_deb(tmp, deb, sizeof(deb))) {
		setup_fail(c, "run `apt-get update` and try again", "apt-get download %s left no .deb", spec);
		goto out;
	}
	if (sha256_file(deb, sum) < 0 || strcmp(sum, k->sha256) != 0) {
		setup_fail(c, "run `apt-get update` and try again", "%s: sha256 %s, the apt index says %s", deb, sum,
			   k->sha256);
		goto out;
	}
	if (collect_modules(c, deb, k, &set, &vz, &vzlen) < 0)
		goto out;
	int xr = vmlinux_extract(vz, vzlen, &elf, &elflen);
	if (xr < 0) {
		setup_fail(c, "report this: fcvm expects an xz-compressed Debian kernel", "vmlinuz-%s: %s", k->release,
			   xr == -ENOENT   ? "no xz stream"
			   : xr == -ENOMEM ? "out of memory"
					   : "not an xz-compressed ELF");
		goto out;
	}
	setup_path(mods, sizeof(mods), "%s/modules", tmp);
	setup_path(vmlinux, sizeof(vmlinux), "%s/vmlinux", tmp);
	if (mkdir(mods, 0755) < 0) {
		setup_fail(c, NULL, "mkdir %s: %s", mods, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < set.norder; i++) {
		const struct mod *m = &set.m[set.order[i]];
		setup_path(path, sizeof(path), "%s/%02zu-%s.ko", mods, i + 1, m->name);
		if ((wr = write_all(path, m->data, m->len, 0644)) < 0) {
			setup_fail(c, "check free space in the asset directory", "writing %s: %s", path, strerror(-wr));
			goto out;
		}
	}
	setup_path(path, sizeof(path), "%s/release", mods);
	wr = write_all(path, k->release, strlen(k->release), 0644);
	if (wr < 0 || (wr = write_all(vmlinux, elf, elflen, 0644)) < 0) {
		setup_fail(c, "check free space in the asset directory", "writing %s: %s", tmp, strerror(-wr));
		goto out;
	}
	if (setup_publish(c, mods, k->modules) < 0 || setup_publish(c, vmlinux, k->file) < 0)
		goto out;
	rc = 0;
out:
	modset_free(&set);
	free(vz);
	free(elf);
	setup_rmtree(tmp);
	return rc;
}
