/* Guest assets (kernel, initramfs, rootfs, demo image) as built by `fcvm setup`: where they
 * live and what DIR/current.json names. Shared by the CLI and the supervisor. */
#ifndef FCVM_ASSETS_H
#define FCVM_ASSETS_H

#include <limits.h>
#include <stddef.h>

#define FCVM_ENV_ASSETS	       "FCVM_ASSETS"
#define FCVM_SYSTEM_ASSETS_DIR "/var/cache/fcvm/assets"
#define FCVM_ASSETS_MANIFEST   "current.json"
#define FCVM_ASSETS_FORMAT     1
#define FCVM_DEMO_REF	       "localhost/fcvm-demo:latest"
/* In the rootfs: a read-only podman additional image store holding FCVM_DEMO_REF (overlay). */
#define FCVM_IMAGE_STORE "/usr/lib/containers/fcvm-images"

struct assets {
	char kernel[PATH_MAX]; /* absolute paths */
	char initramfs[PATH_MAX];
	char rootfs[PATH_MAX];
	char demo_image[PATH_MAX];
	char demo_ref[256];
	char kernel_version[64];
};

/* The asset directory: $FCVM_ASSETS, else /var/cache/fcvm/assets for root, else
 * $XDG_CACHE_HOME/fcvm/assets (~/.cache/fcvm/assets) -- unless that has no manifest and the
 * system one (built by `sudo fcvm setup`) has: then the system one. Returns 0 or
 * -ENAMETOOLONG/-ENOENT. */
int assets_dir_default(char *buf, size_t n);

/* Read DIR/current.json. Returns 0, or -errno with a message naming the fix in err. */
int assets_load(const char *dir, struct assets *a, char *err, size_t errlen);

#endif
