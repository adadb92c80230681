/* What kind of object does a received file descriptor refer to? Each check looks at the
 * object itself (fstat, nsfs ioctl, socket options), never at what the sender claims. */
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "proto/fdkind.h"

#define TUN_MAJOR 10 /* /dev/net/tun: misc device 10, minor 200 */
#define TUN_MINOR 200

static bool fs_is(int fd, unsigned long magic)
{
	struct statfs sf;
	return fstatfs(fd, &sf) == 0 && (unsigned long)sf.f_type == magic;
}

static bool is_netns(int fd)
{
	/* Only ask nsfs inodes: the ioctl number could mean something else to a device. */
	return fs_is(fd, NSFS_MAGIC) && ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
}

static bool is_userns(int fd)
{
	return fs_is(fd, NSFS_MAGIC) && ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWUSER;
}

static bool is_userfaultfd(int fd)
{
	char path[64], target[64];
	static const char want[] = "anon_inode:[userfaultfd]";

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, target, sizeof(target));
	return n == (ssize_t)(sizeof(want) - 1) && memcmp(target, want, sizeof(want) - 1) == 0;
}

static bool sockopt_is(int fd, int opt, int want)
{
	int v = 0;
	socklen_t len = sizeof(v);
	return getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 && len == sizeof(v) && v == want;
}

bool fd_is_kind(int fd, enum fd_kind kind)
{
	struct stat st;

	if (fd < 0 || kind == FDK_NONE)
		return false;
	if (kind == FDK_ANY)
		return fcntl(fd, F_GETFD) >= 0;
	if (fstat(fd, &st) < 0)
		return false;
	switch (kind) {
	case FDK_FILE:
		/* nsfs and anon inodes can look regular; they are not files */
		return S_ISREG(st.st_mode) && !fs_is(fd, NSFS_MAGIC) && !fs_is(fd, ANON_INODE_FS_MAGIC);
	case FDK_DIR:
		return S_ISDIR(st.st_mode);
	case FDK_NETNS:
		return is_netns(fd);
	case FDK_USERNS:
		return is_userns(fd);
	case FDK_USERFAULTFD:
		return is_userfaultfd(fd);
	case FDK_TAP:
		return S_ISCHR(st.st_mode) && major(st.st_rdev) == TUN_MAJOR && minor(st.st_rdev) == TUN_MINOR;
	case FDK_SEQPACKET:
		return S_ISSOCK(st.st_mode) && sockopt_is(fd, SO_TYPE, SOCK_SEQPACKET) &&
		       sockopt_is(fd, SO_DOMAIN, AF_UNIX);
	case FDK_SOCKET:
		return S_ISSOCK(st.st_mode);
	case FDK_MEMFD:
		/* F_GET_SEALS answers only on shmem (and hugetlbfs) files */
		return S_ISREG(st.st_mode) && (fs_is(fd, TMPFS_MAGIC) || fs_is(fd, HUGETLBFS_MAGIC)) &&
		       fcntl(fd, F_GET_SEALS) >= 0;
	case FDK_NONE:
	case FDK_ANY:
		break;
	}
	return false;
}

const char *fd_kind_name(enum fd_kind kind)
{
	switch (kind) {
	case FDK_NONE:
		return "none";
	case FDK_ANY:
		return "any";
	case FDK_FILE:
		return "file";
	case FDK_DIR:
		return "dir";
	case FDK_NETNS:
		return "netns";
	case FDK_USERNS:
		return "userns";
	case FDK_USERFAULTFD:
		return "userfaultfd";
	case FDK_TAP:
		return "tap";
	case FDK_SEQPACKET:
		return "seqpacket";
	case FDK_SOCKET:
		return "socket";
	case FDK_MEMFD:
		return "memfd";
	}
	return "unknown";
}
