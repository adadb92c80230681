/* proto/fdkind.c: each kind recognised, and nothing else mistaken for it. */
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "proto/fdkind.h"
#include "tests/unit/check.h"

static const enum fd_kind all[] = {FDK_NONE,	    FDK_ANY, FDK_FILE,	    FDK_DIR,   FDK_NETNS,
				   FDK_USERFAULTFD, FDK_TAP, FDK_SEQPACKET, FDK_SOCKET};

/* fd is exactly the kinds in `yes` (FDK_ANY always, FDK_NONE never) */
static void only(int fd, const enum fd_kind *yes, size_t n)
{
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		bool want = all[i] == FDK_ANY;
		for (size_t k = 0; k < n; k++)
			want |= yes[k] == all[i];
		if (fd_is_kind(fd, all[i]) != want) {
			fprintf(stderr, "fd %d: kind %s should be %s\n", fd, fd_kind_name(all[i]), want ? "yes" : "no");
			CHECK(0);
		}
	}
}

#define ONLY(fd, ...)                                                                                                  \
	do {                                                                                                           \
		const enum fd_kind _k[] = {__VA_ARGS__};                                                               \
		only((fd), _k, sizeof(_k) / sizeof(_k[0]));                                                            \
	} while (0)

TEST(regular_file)
{
	char path[] = "/tmp/fdkind.XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	unlink(path);
	ONLY(fd, FDK_FILE);
	int mfd = memfd_create("fdkind", MFD_CLOEXEC);
	CHECK(mfd >= 0);
	ONLY(mfd, FDK_FILE);
}

TEST(directory)
{
	int fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0);
	ONLY(fd, FDK_DIR);
	int pfd = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
	CHECK(pfd >= 0);
	ONLY(pfd, FDK_DIR);
}

TEST(netns)
{
	int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		SKIP("cannot open /proc/self/ns/net");
	ONLY(fd, FDK_NETNS);
	int uts = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	CHECK(uts >= 0);
	ONLY(uts, FDK_ANY); /* a namespace, but not a network one */
}

TEST(userfaultfd)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	if (fd < 0 && (errno == EPERM || errno == ENOSYS))
		SKIP("userfaultfd not available to this process");
	CHECK(fd >= 0);
	ONLY(fd, FDK_USERFAULTFD);
	int ev = eventfd(0, EFD_CLOEXEC); /* another anon inode */
	CHECK(ev >= 0);
	ONLY(ev, FDK_ANY);
}

TEST(tap)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		SKIP("/dev/net/tun cannot be opened");
	ONLY(fd, FDK_TAP);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC); /* a char device, not tun */
	CHECK(null >= 0);
	ONLY(null, FDK_ANY);
}

TEST(sockets)
{
	int sp[2], ss[2];
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ss) == 0);
	ONLY(sp[0], FDK_SEQPACKET, FDK_SOCKET);
	ONLY(ss[0], FDK_SOCKET);
	int dg = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(dg >= 0);
	ONLY(dg, FDK_SOCKET);
	int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (udp >= 0)
		ONLY(udp, FDK_SOCKET);
}

TEST(pipe_and_closed)
{
	int p[2];
	CHECK(pipe(p) == 0);
	ONLY(p[0], FDK_ANY);
	ONLY(p[1], FDK_ANY);
	close(p[0]);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		CHECK(!fd_is_kind(p[0], all[i]));
		CHECK(!fd_is_kind(-1, all[i]));
	}
}

TEST(names)
{
	CHECK_STR(fd_kind_name(FDK_NONE), "none");
	CHECK_STR(fd_kind_name(FDK_ANY), "any");
	CHECK_STR(fd_kind_name(FDK_FILE), "file");
	CHECK_STR(fd_kind_name(FDK_DIR), "dir");
	CHECK_STR(fd_kind_name(FDK_NETNS), "netns");
	CHECK_STR(fd_kind_name(FDK_USERFAULTFD), "userfaultfd");
	CHECK_STR(fd_kind_name(FDK_TAP), "tap");
	CHECK_STR(fd_kind_name(FDK_SEQPACKET), "seqpacket");
	CHECK_STR(fd_kind_name(FDK_SOCKET), "socket");
	CHECK_STR(fd_kind_name((enum fd_kind)99), "unknown");
}
