/* A VM's user + network namespace, its netlink sockets and its tap, made by a short-lived
 * child that shares our fd table (see vmns.h).
 *
 * The child comes from a raw clone(2) without CLONE_VM: it runs on a copy of our memory and
 * stack like a fork child, and only ever leaves through _exit. It counts against
 * RLIMIT_NPROC of our real uid (netd runs with a finite limit): clone fails with EAGAIN when
 * that limit leaves no room, and CLONE_NEWUSER with ENOSPC past user.max_user_namespaces. */
#include "helpers/netd/vmns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the child writes to the pipe before it exits. */
struct vmns_report {
	int err; /* 0 or an errno */
	struct vmns ns;
};

static void vmns_init(struct vmns *ns)
{
	ns->userns_fd = ns->netns_fd = ns->rtnl_fd = ns->nfnl_fd = ns->tap_fd = -1;
}

void vmns_close(struct vmns *ns)
{
	int *fds[] = {&ns->userns_fd, &ns->netns_fd, &ns->rtnl_fd, &ns->nfnl_fd, &ns->tap_fd};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* In the child: writes "1" to a sysctl of the child's (new) network namespace (/proc/sys/net
 * resolves to the namespace of whoever looks a name up, so the host's mount serves). */
static int write_one(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return errno;
	n = write(fd, "1", 1);
	if (n != 1) {
		int e = n < 0 ? errno : EIO;
		close(fd);
		return e;
	}
	return close(fd) < 0 ? errno : 0;
}

static int open_tap(const char *name)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* In the child, inside the new namespaces: 0 or an errno; what was opened is in ns. */
static int child_open(struct vmns *ns, const char *tap_name)
{
	int e;

	/* forwarding and loopback sources for every device of the namespace, those made later
	 * (pasta's, rootless) too */
	if ((e = write_one("/proc/sys/net/ipv4/ip_forward")) ||
	    (e = write_one("/proc/sys/net/ipv4/conf/all/route_localnet")))
		return e;
	/* the namespaces themselves from a socket made in them: no /proc/self in netd's root */
	if ((ns->rtnl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) < 0 ||
	    (ns->netns_fd = ioctl(ns->rtnl_fd, SIOCGSKNS)) < 0 ||
	    (ns->userns_fd = ioctl(ns->netns_fd, NS_GET_USERNS)) < 0 ||
	    (ns->nfnl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER)) < 0 ||
	    (ns->tap_fd = open_tap(tap_name)) < 0)
		return errno;
	return 0;
}

/* The child's whole life: it reports through the pipe and never returns. */
static __attribute__((noreturn)) void child_main(int report_fd, const char *tap_name)
{
	struct vmns_report rep = {0};

	vmns_init(&rep.ns);
	rep.err = child_open(&rep.ns, tap_name);
	if (send(report_fd, &rep, sizeof(rep), 0) != (ssize_t)sizeof(rep))
		rep.err = rep.err ? rep.err : EIO;
	_exit(rep.err ? (rep.err & 0xff ? rep.err & 0xff : 1) : 0);
}

static int reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st) ? -WEXITSTATUS(st) : 0;
	return -ECHILD;
}

int vmns_make(struct vmns *ns, const char *tap_name)
{
	struct vmns_report rep;
	int pfd[2], ret;
	ssize_t n;
	long pid;

	vmns_init(ns);
	if (!tap_name || !tap_name[0] || strlen(tap_name) >= IF_NAMESIZE)
		return -EINVAL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pfd) < 0)
		return -errno;
	pid = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNET | CLONE_FILES | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0)
		child_main(pfd[1], tap_name);
	if (pid < 0) {
		ret = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return ret;
	}
	ret = reap((pid_t)pid);
	/* The child has exited: its report, if any, is one whole packet on the socket. */
	close(pfd[1]);
	n = recv(pfd[0], &rep, sizeof(rep), MSG_DONTWAIT);
	close(pfd[0]);
	if (n != (ssize_t)sizeof(rep))
		return ret ? ret : -EIO; /* killed before reporting: nothing to close that we know of */
	*ns = rep.ns;
	if (rep.err || ret) {
		vmns_close(ns);
		return rep.err ? -rep.err : ret;
	}
	return 0;
}
