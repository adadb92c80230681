/* fcvm setup --btrfs-loop SIZE [--data-dir DIR] [--fstab FILE]
 * Makes a loop-backed btrfs for the data directory (root only): a sparse image file beside
 * DIR, mkfs.btrfs, a loop device through /dev/loop-control, mount(2) with
 * user_subvol_rm_allowed (so stored removes subvolumes without CAP_SYS_ADMIN), and an fstab
 * line so it comes back at boot.
 * Without --btrfs-loop: the guest assets (cli/setup_assets.c):
 *   fcvm setup [--assets DIR] [--check [--json]] [--mirror URL] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/setup.h"
#include "common/config.h"
#include "common/util.h"

#define BTRFS_MAGIC 0x9123683E
#define MOUNT_OPTS  "user_subvol_rm_allowed"

static int fail(const char *what, int err)
{
	fprintf(stderr, "fcvm setup: %s: %s\n", what, strerror(err));
	return EXIT_FAIL;
}

/* mkfs.btrfs has no library: run it, quietly, and wait. */
static int run_mkfs(const char *img)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (nul >= 0)
			dup2(nul, 1); /* its notes about defaults are not for our user */
		execlp("mkfs.btrfs", "mkfs.btrfs", "-q", "-f", img, (char *)NULL);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* Attach img to a free loop device and return an open fd of it. Autoclear detaches the
 * device once it is neither open nor mounted: keep the fd until the mount holds it. */
static int attach_loop(const char *img, char *dev, size_t devlen)
{
	int ctl AUTOCLOSE = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	int file AUTOCLOSE = open(img, O_RDWR | O_CLOEXEC);
	if (ctl < 0 || file < 0)
		return -errno;
	for (int tries = 0; tries < 8; tries++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			return -errno;
		snprintf(dev, devlen, "/dev/loop%d", n);
		int loop = open(dev, O_RDWR | O_CLOEXEC);
		if (loop < 0)
			return -errno;
		struct loop_config cfg = {.fd = (unsigned)file, .info = {.lo_flags = LO_FLAGS_AUTOCLEAR}};
		/* informational only (shown by losetup): a truncated name is fine */
		snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%.63s", img);
		if (ioctl(loop, LOOP_CONFIGURE, &cfg) == 0)
			return loop;
		int err = errno;
		close(loop);
		if (err != EBUSY) /* EBUSY: another process took it first; ask again */
			return -err;
	}
	return -EBUSY;
}

/* Append "IMG DIR btrfs loop,OPTS 0 0" unless a line for DIR is there already. */
static int record_fstab(const char *fstab, const char *img, const char *dir)
{
	char line[8192];
	FILE *f = fopen(fstab, "a+");
	if (!f)
		return -errno;
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		char a[4096], b[4096];
		if (sscanf(line, "%4095s %4095s", a, b) == 2 && strcmp(b, dir) == 0) {
			fclose(f);
			return 0;
		}
	}
	fprintf(f, "%s %s btrfs loop,%s 0 0\n", img, dir, MOUNT_OPTS);
	return fclose(f) == 0 ? 0 : -errno;
}

static int setup_btrfs_loop(uint64_t size, const char *dir, const char *fstab)
{
	char img[4200], dev[64];
	struct statfs sf;
	uid_t uid;
	gid_t gid;
	int rc;

	if (geteuid() != 0) {
		fprintf(stderr, "fcvm setup: --btrfs-loop needs root (a rootless user can point --data-dir "
				"at any btrfs or XFS directory they own)\n");
		return EXIT_DENIED;
	}
	if (lookup_user(FCVM_STORED_USER, &uid, &gid) < 0) {
		fprintf(stderr, "fcvm setup: user %s is missing: run scripts/create-users\n", FCVM_STORED_USER);
		return EXIT_FAIL;
	}
	if ((rc = mkdir_p(dir, 0700)) < 0)
		return fail(dir, -rc);
	if (statfs(dir, &sf) == 0 && sf.f_type == BTRFS_MAGIC) {
		printf("%s is already on btrfs\n", dir);
		return EXIT_OK;
	}
	snprintf(img, sizeof(img), "%s.btrfs", dir);
	printf("[1/4] image %s (%llu MiB, sparse)\n", img, (unsigned long long)(size >> 20));
	int fd = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(img, errno);
	rc = ftruncate(fd, (off_t)size) < 0 ? errno : 0;
	close(fd);
	if (rc)
		return fail(img, rc);
	printf("[2/4] mkfs.btrfs\n");
	if ((rc = run_mkfs(img)) < 0)
		return fail("mkfs.btrfs (is btrfs-progs installed?)", -rc);
	printf("[3/4] loop device and mount\n");
	int loop = attach_loop(img, dev, sizeof(dev));
	if (loop < 0)
		return fail("loop device", -loop);
	rc = mount(dev, dir, "btrfs", 0, MOUNT_OPTS) < 0 ? errno : 0;
	close(loop);
	if (rc)
		return fail(dir, rc);
	if (chown(dir, uid, gid) < 0 || chmod(dir, 0700) < 0)
		return fail(dir, errno);
	printf("[4/4] recorded in %s\n", fstab);
	if ((rc = record_fstab(fstab, img, dir)) < 0)
		return fail(fstab, -rc);
	printf("%s: btrfs on %s, owned by %s\n", dir, dev, FCVM_STORED_USER);
	return EXIT_OK;
}

int cmd_setup(int argc, char **argv, struct cli_opts *o)
{
	static const struct option opts[] = {
	    {"btrfs-loop", required_argument, NULL, 'b'},
	    {"data-dir", required_argument, NULL, 'd'},
	    {"fstab", required_argument, NULL, 'f'},
	    {"assets", required_argument, NULL, 'a'},
	    {"check", no_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"mirror", required_argument, NULL, 'm'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const char usage[] = "usage: fcvm setup [--assets DIR] [--check [--json]] [--mirror URL]\n"
				    "       fcvm setup --btrfs-loop SIZE [--data-dir DIR] [--fstab FILE]\n";
	const char *size_s = NULL, *dir = FCVM_SYSTEM_DATA_DIR, *fstab = "/etc/fstab";
	const char *assets = NULL, *mirror = NULL;
	bool check = false, json = o && o->json;
	uint64_t size;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			size_s = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'f':
			fstab = optarg;
			break;
		case 'a':
			assets = optarg;
			break;
		case 'c':
			check = true;
			break;
		case 'j':
			json = true;
			break;
		case 'm':
			mirror = optarg;
			break;
		default:
			fputs(usage, c == 'h' ? stdout : stderr);
			return c == 'h' ? EXIT_OK : EXIT_USAGE;
		}
	}
	if (!size_s) {
		if (optind != argc || (json && !check)) {
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
		return setup_assets_main(assets, check, json, mirror);
	}
	if (!size_s || optind != argc || dir[0] != '/') {
		fprintf(stderr, "usage: fcvm setup --btrfs-loop SIZE [--data-dir /ABSOLUTE/DIR] [--fstab FILE]\n");
		return EXIT_USAGE;
	}
	if (!cli_parse_size(size_s, &size) || size < (256ull << 20)) {
		fprintf(stderr, "fcvm setup: --btrfs-loop wants a size of at least 256M (e.g. 20G)\n");
		return EXIT_USAGE;
	}
	return setup_btrfs_loop(size, dir, fstab);
}
