/* Reading the guest assets' manifest (DIR/current.json); where they live: assets_dir.c. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/assets.h"

static int put(char *buf, size_t n, const char *a, const char *b)
{
	int len = snprintf(buf, n, "%s%s", a, b);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

/* DIR/NAME of a manifest field: a plain file name, present. */
static int part(const char *dir, json_t *root, const char *key, char *out, size_t n, char *err, size_t errlen)
{
	const char *name = json_string_value(json_object_get(root, key));
	struct stat st;
	if (!name || !*name || strchr(name, '/') || name[0] == '.') {
		snprintf(err, errlen, "%s/%s: no valid \"%s\": run `sudo fcvm setup`", dir, FCVM_ASSETS_MANIFEST, key);
		return -EINVAL;
	}
	if (put(out, n, dir, "/") < 0 || strlen(out) + strlen(name) >= n) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	strcat(out, name);
	if (stat(out, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "guest asset %s: %s: run `sudo fcvm setup`", out, strerror(e));
		return -e;
	}
	return 0;
}

int assets_load(const char *dir, struct assets *a, char *err, size_t errlen)
{
	char path[PATH_MAX], abs[PATH_MAX];
	json_error_t jerr;
	int rc;

	memset(a, 0, sizeof(*a));
	if (!realpath(dir, abs)) {
		rc = errno;
		snprintf(err, errlen, "no guest assets in %s (%s): run `sudo fcvm setup`", dir, strerror(rc));
		return -rc;
	}
	if (put(path, sizeof(path), abs, "/" FCVM_ASSETS_MANIFEST) < 0) {
		snprintf(err, errlen, "%s: path too long", abs);
		return -ENAMETOOLONG;
	}
	if (access(path, F_OK) < 0) {
		rc = errno;
		snprintf(err, errlen, "no guest assets in %s: run `sudo fcvm setup`", abs);
		return -rc;
	}
	json_t *root = json_load_file(path, 0, &jerr);
	if (!root || !json_is_object(root)) {
		snprintf(err, errlen, "%s: %s: run `sudo fcvm setup` again", path, root ? "not an object" : jerr.text);
		json_decref(root);
		return -EINVAL;
	}
	if (json_integer_value(json_object_get(root, "format")) != FCVM_ASSETS_FORMAT) {
		snprintf(err, errlen, "%s: unknown format: run `sudo fcvm setup` with this fcvm", path);
		json_decref(root);
		return -EINVAL;
	}
	const char *ref = json_string_value(json_object_get(root, "demo_ref"));
	const char *kv = json_string_value(json_object_get(root, "kernel_version"));
	if ((rc = part(abs, root, "kernel", a->kernel, sizeof(a->kernel), err, errlen)) < 0 ||
	    (rc = part(abs, root, "initramfs", a->initramfs, sizeof(a->initramfs), err, errlen)) < 0 ||
	    (rc = part(abs, root, "rootfs", a->rootfs, sizeof(a->rootfs), err, errlen)) < 0 ||
	    (rc = part(abs, root, "demo_image", a->demo_image, sizeof(a->demo_image), err, errlen)) < 0) {
		json_decref(root);
		return rc;
	}
	snprintf(a->demo_ref, sizeof(a->demo_ref), "%s", ref ? ref : FCVM_DEMO_REF);
	snprintf(a->kernel_version, sizeof(a->kernel_version), "%s", kv ? kv : "");
	json_decref(root);
	return 0;
}
