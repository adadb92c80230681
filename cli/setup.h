/* `fcvm setup` (guest assets): the steps and what they share. Each part is named by a hash of
 * its inputs (content addressing), built under DIR/.tmp-XXXXXX and published with rename. */
#ifndef FCVM_CLI_SETUP_H
#define FCVM_CLI_SETUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/assets.h"

#define SETUP_HASH_LEN 16 /* hex chars of sha256 in a part's name */

/* What failed, and what to do about it; printed by the driver. */
struct setup_err {
	char what[512];
	char cmd[1024];	 /* the command that failed, if any */
	char tail[2048]; /* its last lines of output */
	char fix[512];
};

struct setup_ctx {
	char dir[PATH_MAX];	/* asset directory (absolute) */
	bool tty;		/* progress on one rewritten line */
	const char *step_label; /* "[3/5] rootfs" while a step runs */
	uint64_t step_start_ms;
	struct setup_err err;
};

/* ---- inputs and names (filled by *_inputs, no building) ---- */
struct kernel_in {
	char pkg[128];	   /* linux-image-6.1.0-NN-amd64 */
	char version[128]; /* its package version */
	char sha256[65];   /* of the .deb, from the apt index */
	char release[64];  /* 6.1.0-NN-amd64 */
	char hash[SETUP_HASH_LEN + 1];
	char file[64];	  /* kernel-H.vmlinux */
	char modules[64]; /* kernel-H.modules (dir: NN-name.ko, a `release` file) */
};
struct initramfs_in {
	char agent[PATH_MAX];
	char hash[SETUP_HASH_LEN + 1];
	char file[64];
};
struct rootfs_in {
	char mirror[512];	    /* --mirror, else filled by rootfs_source */
	char mirror_from[PATH_MAX]; /* "--mirror", or the apt sources file that lists it */
	char proxy[1024];	    /* for debootstrap's http_proxy ("": none) */
	char proxy_shown[1024];	    /* the same without a user:password@, for messages */
	char demo[64];		    /* the demo image's archive in DIR, loaded into FCVM_IMAGE_STORE */
	char hash[SETUP_HASH_LEN + 1];
	char file[64];
};
struct image_in {
	char busybox_version[128];
	char hash[SETUP_HASH_LEN + 1];
	char file[64];
};

/* ---- hashing (sha256, OpenSSL EVP) ---- */
struct hasher;
struct hasher *hasher_new(const char *domain);
void hasher_add(struct hasher *h, const char *s); /* length-prefixed: no ambiguity */
/* Finish: the first SETUP_HASH_LEN hex chars into out (and free h). */
void hasher_done(struct hasher *h, char out[SETUP_HASH_LEN + 1]);
int sha256_file(const char *path, char hex[65]); /* 0 or -errno */

/* ---- running programs: fork/execvp, output captured ---- */
struct run_opts {
	const char *cwd;
	char *out; /* if set: stdout collected here (NUL-terminated), stderr kept as the tail */
	size_t outlen;
	bool progress;		/* show elapsed time and the last output line while it runs */
	const char *const *env; /* changes to its environment: "NAME=VALUE" sets, "NAME" unsets */
};
/* Runs argv; 0 on exit status 0. On failure fills c->err.cmd/tail/what and returns -1. */
int setup_run(struct setup_ctx *c, const char *const argv[], const struct run_opts *o);

/* ---- errors, files ---- */
/* snprintf for paths: -ENAMETOOLONG (out truncated) instead of a silent cut. */
__attribute__((format(printf, 3, 4))) int setup_path(char *out, size_t n, const char *fmt, ...);
__attribute__((format(printf, 3, 4))) int setup_fail(struct setup_ctx *c, const char *fix, const char *fmt, ...);
int setup_mktemp(struct setup_ctx *c, char *out, size_t n);		   /* DIR/.tmp-XXXXXX, 0755 */
void setup_rmtree(const char *path);					   /* rm -rf, staying on one filesystem */
int setup_publish(struct setup_ctx *c, const char *tmp, const char *name); /* rename into DIR */
int setup_write_file(const char *path, const char *text, mode_t mode);
bool setup_exists(const struct setup_ctx *c, const char *name);
void setup_progress(struct setup_ctx *c, const char *last_line); /* a TTY status update */

/* ---- the parts ---- */
int kernel_inputs(struct setup_ctx *c, struct kernel_in *k);
/* When the apt index cannot say (no lists, apt-cache missing): the kernel current.json names,
 * if it is there. true if k was filled. */
bool kernel_from_manifest(struct setup_ctx *c, struct kernel_in *k);
int kernel_build(struct setup_ctx *c, const struct kernel_in *k);
int initramfs_inputs(struct setup_ctx *c, const struct kernel_in *k, struct initramfs_in *i);
int initramfs_build(struct setup_ctx *c, const struct kernel_in *k, const struct initramfs_in *i);
/* After image_inputs: the rootfs holds the demo image pre-loaded, so its hash is an input. */
int rootfs_inputs(struct setup_ctx *c, const char *mirror, const struct image_in *im, struct rootfs_in *r);
/* Before a rootfs build (not an input: any mirror serves the same suite): the mirror, unless
 * --mirror named one, from the host's apt sources, and the proxy, from apt's configuration or
 * $http_proxy (common/apt_sources.h). An error names the files read and suggests --mirror. */
int rootfs_source(struct setup_ctx *c, struct rootfs_in *r);
int rootfs_build(struct setup_ctx *c, const struct rootfs_in *r);
int image_inputs(struct setup_ctx *c, struct image_in *im);
int image_build(struct setup_ctx *c, const struct image_in *im);

/* The driver: `fcvm setup [--assets DIR] [--check] [--json] [--mirror URL]`. */
int setup_assets_main(const char *dir, bool check, bool json, const char *mirror);

#endif
