/* Stage 3b: an empty root, and Landlock. The model is passt's isolate_prefork(): once the
 * program and its libraries are loaded, nothing of the host's filesystem is needed but what
 * the policy names, so the process moves into a mount namespace whose root is an empty tmpfs
 * holding only those paths (bind mounts at the same place), read-only. */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "policy/sandbox.h"

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE /* Landlock ABI 3 (Linux 6.2); Debian 12's headers stop at 2 */
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

#define BUILD_DIR "/tmp" /* any existing directory: the tmpfs on it becomes / */

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int rc = n == (ssize_t)strlen(text) ? 0 : -EIO;
	close(fd);
	return rc;
}

int sandbox_userns(int more_ns, uid_t inner_uid, gid_t inner_gid)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int rc;
	/* a non-dumpable process's /proc/self files are root's: it could not write its own maps
	 * (the program makes itself non-dumpable again in its sandbox) */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || unshare(CLONE_NEWUSER | more_ns) < 0)
		return -errno;
	if ((rc = write_file("/proc/self/setgroups", "deny")) < 0)
		return rc;
	snprintf(map, sizeof(map), "%u %u 1", (unsigned)inner_uid, (unsigned)uid);
	if ((rc = write_file("/proc/self/uid_map", map)) < 0)
		return rc;
	snprintf(map, sizeof(map), "%u %u 1", (unsigned)inner_gid, (unsigned)gid);
	return write_file("/proc/self/gid_map", map);
}

static bool has_sys_admin(void)
{
	cap_flag_value_t v = CAP_CLEAR;
	cap_t cur = cap_get_proc();
	if (cur && cap_get_flag(cur, CAP_SYS_ADMIN, CAP_EFFECTIVE, &v) < 0)
		v = CAP_CLEAR;
	cap_free(cur);
	return v == CAP_SET;
}

/* mkdir -p of BUILD_DIR + path's directories, then the mount point itself (a file for a
 * file), then the bind. */
static int bind_one(const char *path, bool writable)
{
	char dst[512];
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (snprintf(dst, sizeof(dst), BUILD_DIR "%s", path) >= (int)sizeof(dst))
		return -ENAMETOOLONG;
	for (char *c = dst + strlen(BUILD_DIR) + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(dst, 0755) < 0 && errno != EEXIST)
			return -errno;
		*c = '/';
	}
	if (S_ISDIR(st.st_mode) ? mkdir(dst, 0755) < 0 && errno != EEXIST : mknod(dst, S_IFREG | 0600, 0) < 0)
		return -errno;
	if (mount(path, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		return -errno;
	if (!writable && mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, NULL) < 0)
		return -errno;
	return 0;
}

int sandbox_empty_root(const struct sandbox_policy *p, const struct sandbox_opts *o)
{
	int rc;
	/* without CAP_SYS_ADMIN here: a user namespace where we are still ourselves */
	if (!has_sys_admin() && (rc = sandbox_userns(0, geteuid(), getegid())) < 0)
		return rc;
	if (unshare(CLONE_NEWNS) < 0)
		return -errno;
	/* nothing we do here reaches the host's mounts, nor theirs us */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("fcvm-root", BUILD_DIR, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0755,size=64k,nr_inodes=64") < 0)
		return -errno;
	for (size_t i = 0; i < p->nbinds; i++)
		if ((rc = bind_one(p->binds[i].path, p->binds[i].writable)) < 0)
			return rc;
	/* a run-time path that does not exist (yet) is left out, not an error */
	for (size_t i = 0; o && i < o->nbinds_ro; i++)
		if ((rc = bind_one(o->binds_ro[i], false)) < 0 && rc != -ENOENT)
			return rc;
	/* pivot_root(".", "."): the old root ends up on top of the new one, then goes */
	if (chdir(BUILD_DIR) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
	    chdir("/") < 0)
		return -errno;
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -errno;
	return 0;
}

int sandbox_landlock_beneath(int dirfd)
{
	struct landlock_ruleset_attr attr = {
	    .handled_access_fs =
		LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
		LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
		LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
		LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		LANDLOCK_ACCESS_FS_MAKE_SYM,
	};
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0)
		return -EOPNOTSUPP;
	/* what later ABIs added: renames across directories (2), truncate (3) */
	if (abi >= 2)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (rs < 0)
		return -errno;
	/* beneath the directory: everything but executing and device nodes */
	struct landlock_path_beneath_attr beneath = {
	    .allowed_access = attr.handled_access_fs & ~(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
							 LANDLOCK_ACCESS_FS_MAKE_BLOCK),
	    .parent_fd = dirfd,
	};
	int rc = 0;
	if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &beneath, 0) < 0 ||
	    syscall(SYS_landlock_restrict_self, rs, 0) < 0)
		rc = -errno;
	close(rs);
	return rc;
}
