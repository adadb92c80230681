/* fcvm setup, rootfs: debootstrap (minbase + podman and friends) into a temp tree, from the
 * mirror the host's apt sources list (or --mirror) through apt's proxy, trimmed and configured
 * for podman without systemd, then mkfs.ext4 -d (no loop mount). Root only. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/setup.h"
#include "common/apt_sources.h"
#include "common/util.h"

#define ROOTFS_FORMAT "fcvm-rootfs-2"
#define ROOTFS_SUITE  "bookworm"
#define ROOTFS_PKGS   "podman,crun,conmon,e2fsprogs,kmod,iproute2,netavark,iptables"

struct conf_file {
	const char *path;
	const char *text;
};

static const struct conf_file conf_files[] = {
    {"etc/containers/containers.conf", "# written by fcvm setup: podman in the fcvm guest (no systemd)\n"
				       "[containers]\n"
				       "log_driver = \"k8s-file\"\n"
				       "\n"
				       "[engine]\n"
				       "cgroup_manager = \"cgroupfs\"\n"
				       "events_logger = \"file\"\n"
				       "network_backend = \"netavark\"\n"
				       "runtime = \"crun\"\n"},
    {"etc/containers/storage.conf", "# written by fcvm setup\n"
				    "[storage]\n"
				    "driver = \"overlay\"\n"
				    "runroot = \"/run/containers/storage\"\n"
				    "graphroot = \"/var/lib/containers/storage\"\n"
				    "\n"
				    "[storage.options]\n"
				    "additionalimagestores = [\"" FCVM_IMAGE_STORE "\"]\n"},
    {"etc/hostname", "fcvm\n"},
    {"etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tfcvm\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
    {"etc/resolv.conf", ""},
};

static const char *const made_dirs[] = {"etc/containers/networks", "var/lib/containers"};

int rootfs_inputs(struct setup_ctx *c, const char *mirror, const struct image_in *im, struct rootfs_in *r)
{
	memset(r, 0, sizeof(*r));
	setup_path(r->demo, sizeof(r->demo), "%s", im->file);
	if (mirror && *mirror) {
		setup_path(r->mirror, sizeof(r->mirror), "%s", mirror);
		setup_path(r->mirror_from, sizeof(r->mirror_from), "--mirror");
	}
	/* the mirror is not an input: any mirror serves the same suite (rootfs_source) */
	struct hasher *h = hasher_new(ROOTFS_FORMAT);
	hasher_add(h, ROOTFS_SUITE);
	hasher_add(h, ROOTFS_PKGS);
	for (size_t i = 0; i < ARRAY_LEN(conf_files); i++) {
		hasher_add(h, conf_files[i].path);
		hasher_add(h, conf_files[i].text);
	}
	for (size_t i = 0; i < ARRAY_LEN(made_dirs); i++)
		hasher_add(h, made_dirs[i]);
	hasher_add(h, FCVM_IMAGE_STORE);
	hasher_add(h, im->hash); /* the demo image, pre-loaded */
	hasher_done(h, r->hash);
	setup_path(r->file, sizeof(r->file), "rootfs-%s.ext4", r->hash);
	return 0;
}

int rootfs_source(struct setup_ctx *c, struct rootfs_in *r)
{
	struct apt_mirror m;
	if (!r->mirror[0]) {
		if (apt_find_mirror("", ROOTFS_SUITE, &m) < 0)
			return setup_fail(
			    c,
			    "pass --mirror URL (a Debian archive serving " ROOTFS_SUITE
			    "), or list one in /etc/apt/sources.list (`deb URL " ROOTFS_SUITE " main`)",
			    "no Debian archive for %s main among the apt sources (read: %s)", ROOTFS_SUITE,
			    m.files[0] ? m.files : "no /etc/apt/sources.list, no sources.list.d/*.list or *.sources");
		if (setup_path(r->mirror, sizeof(r->mirror), "%s", m.uri) < 0 ||
		    setup_path(r->mirror_from, sizeof(r->mirror_from), "%s", m.from) < 0)
			return setup_fail(c, "pass --mirror URL", "%s: the mirror's URL is too long", m.from);
	}
	if (apt_find_proxy("", r->proxy, sizeof(r->proxy)) < 0)
		return setup_fail(c, "check Acquire::http::Proxy in /etc/apt/apt.conf{,.d/*} and $http_proxy",
				  "the HTTP proxy's URL is too long");
	const char *host = strstr(r->proxy, "://"), *at;
	host = host ? host + 3 : r->proxy;
	at = strchr(host, '@');
	if (at && at < host + strcspn(host, "/"))
		setup_path(r->proxy_shown, sizeof(r->proxy_shown), "%.*s%s", (int)(host - r->proxy), r->proxy, at + 1);
	else
		setup_path(r->proxy_shown, sizeof(r->proxy_shown), "%s", r->proxy);
	return 0;
}

static void rm_glob(const char *root, const char *pattern)
{
	char pat[PATH_MAX];
	glob_t g;
	setup_path(pat, sizeof(pat), "%s/%s", root, pattern);
	if (glob(pat, GLOB_NOSORT, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++)
		setup_rmtree(g.gl_pathv[i]);
	globfree(&g);
}

static uint64_t du_bytes;
static int du_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)p;
	(void)flag;
	(void)ftw;
	du_bytes += (uint64_t)st->st_blocks * 512 + 4096; /* + an inode's share */
	return 0;
}

static int configure(struct setup_ctx *c, const char *root)
{
	char p[PATH_MAX];
	int rc;
	rm_glob(root, "var/cache/apt/archives/*.deb");
	rm_glob(root, "var/lib/apt/lists/*");
	rm_glob(root, "etc/cni/net.d/*");
	for (size_t i = 0; i < ARRAY_LEN(made_dirs); i++) {
		setup_path(p, sizeof(p), "%s/%s", root, made_dirs[i]);
		if ((rc = mkdir_p(p, 0755)) < 0)
			return setup_fail(c, NULL, "mkdir %s: %s", p, strerror(-rc));
	}
	for (size_t i = 0; i < ARRAY_LEN(conf_files); i++) {
		setup_path(p, sizeof(p), "%s/%s", root, conf_files[i].path);
		unlink(p); /* resolv.conf may be a symlink */
		if ((rc = setup_write_file(p, conf_files[i].text, 0644)) < 0)
			return setup_fail(c, NULL, "writing %s: %s", p, strerror(-rc));
	}
	return 0;
}

/* The demo image, loaded by the host's podman into ROOT/FCVM_IMAGE_STORE: the guest's podman
 * reads it as a read-only additional image store and runs it without `podman load`. Native
 * overlay, as the guest uses; only the image and layer metadata, their lock files and the
 * layer's diff are kept (the rest is per-host state podman recreates in its graphroot). */
static int preload_demo(struct setup_ctx *c, const struct rootfs_in *r, const char *root)
{
	char store[PATH_MAX], demo[PATH_MAX], srun[64], p[PATH_MAX];
	static const char *const drop[] = {"libpod", "overlay-containers", "tmp",
					   "mounts", "userns.lock",	   "defaultNetworkBackend"};
	int rc = -1;

	setup_path(store, sizeof(store), "%s%s", root, FCVM_IMAGE_STORE);
	setup_path(demo, sizeof(demo), "%s/%s", c->dir, r->demo);
	/* podman refuses a runroot longer than 50 characters: a short one in /tmp */
	snprintf(srun, sizeof(srun), "/tmp/fcvm-root-XXXXXX");
	if (!mkdtemp(srun))
		return setup_fail(c, "check that /tmp is writable", "mkdtemp %s: %s", srun, strerror(errno));
	const char *load[] = {"podman",	 "--root",	     store,  "--runroot", srun, "--storage-driver",
			      "overlay", "--events-backend", "none", "load",	  "-i", demo,
			      NULL};
	struct run_opts ro = {.progress = true};
	if (setup_run(c, load, &ro) < 0) {
		setup_path(c->err.fix, sizeof(c->err.fix),
			   "see podman's output above; the host's podman (`apt-get install podman`) with native "
			   "overlay (kernel overlayfs) loads the demo image into the guest root");
		goto out;
	}
	for (size_t i = 0; i < ARRAY_LEN(drop); i++) {
		setup_path(p, sizeof(p), "%s/%s", store, drop[i]);
		setup_rmtree(p);
	}
	rc = 0;
out:
	setup_rmtree(srun);
	return rc;
}

int rootfs_build(struct setup_ctx *c, const struct rootfs_in *r)
{
	char tmp[PATH_MAX], root[PATH_MAX], img[PATH_MAX], size[32];
	int rc = -1;

	if (!r->mirror[0])
		return setup_fail(c, NULL, "no mirror for debootstrap (rootfs_source not called)");
	if (geteuid() != 0)
		return setup_fail(c, "run `sudo fcvm setup` (debootstrap needs root)",
				  "building the guest root needs root");
	if (setup_mktemp(c, tmp, sizeof(tmp)) < 0)
		return -1;
	setup_path(root, sizeof(root), "%s/root", tmp);
	setup_path(img, sizeof(img), "%s/rootfs.ext4", tmp);
	static const char include[] = "--include=" ROOTFS_PKGS;
	const char *deb[] = {"debootstrap", "--variant=minbase", include, ROOTFS_SUITE, root, r->mirror, NULL};
	char proxy[sizeof(r->proxy) + 16];
	const char *env[] = {proxy, NULL};
	/* apt's proxy, or none (apt's "DIRECT" overrides the environment) */
	setup_path(proxy, sizeof(proxy), "http_proxy%s%s", r->proxy[0] ? "=" : "", r->proxy);
	struct run_opts ro = {.progress = true, .env = env};
	if (setup_run(c, deb, &ro) < 0) {
		setup_path(c->err.fix, sizeof(c->err.fix),
			   "check network access to %s (%s%s%s) or pass another --mirror URL, `apt-get install "
			   "debootstrap`; details in %s/debootstrap/debootstrap.log while it exists",
			   r->mirror, r->mirror_from, r->proxy[0] ? ", through the proxy " : "", r->proxy_shown, root);
		goto out;
	}
	ro.env = NULL;
	if (configure(c, root) < 0 || preload_demo(c, r, root) < 0)
		goto out;
	du_bytes = 0;
	nftw(root, du_one, 32, FTW_PHYS | FTW_MOUNT);
	uint64_t want = du_bytes + du_bytes / 4;
	if (want < (512ull << 20))
		want = 512ull << 20;
	setup_path(size, sizeof(size), "%lluM", (unsigned long long)((want + (1 << 20) - 1) >> 20));
	const char *mkfs[] = {"mkfs.ext4", "-q", "-F", "-L", "fcvm-root", "-d", root, img, size, NULL};
	if (setup_run(c, mkfs, &ro) < 0) {
		setup_path(c->err.fix, sizeof(c->err.fix),
			   "`apt-get install e2fsprogs` (mkfs.ext4 1.43 or newer for -d); check free space in %s",
			   c->dir);
		goto out;
	}
	rc = setup_publish(c, img, r->file);
out:
	setup_rmtree(tmp);
	return rc;
}
