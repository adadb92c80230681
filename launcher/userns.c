/* A child's own user namespace, made between fork and exec (spawner.c, vmm_jail.c). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "launcher/launcher.h"

static int write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, data, strlen(data));
	int rc = n == (ssize_t)strlen(data) ? 0 : -errno;
	close(fd);
	return rc;
}

int launcher_enter_userns(int more_ns, uid_t inner_uid, gid_t inner_gid)
{
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();
	/* A non-dumpable process's /proc/self files belong to root and it could not write its
	 * own maps. It execs right after; the program makes itself non-dumpable again in its
	 * sandbox. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		return -errno;
	if (unshare(CLONE_NEWUSER | more_ns) < 0)
		return -errno;
	if (write_file("/proc/self/setgroups", "deny") < 0)
		return -errno;
	snprintf(map, sizeof(map), "%u %u 1", (unsigned)inner_uid, (unsigned)uid);
	if (write_file("/proc/self/uid_map", map) < 0)
		return -errno;
	snprintf(map, sizeof(map), "%u %u 1", (unsigned)inner_gid, (unsigned)gid);
	if (write_file("/proc/self/gid_map", map) < 0)
		return -errno;
	return 0;
}
