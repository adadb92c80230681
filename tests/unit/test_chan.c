/* proto/chan.c: frames and fds over SOCK_SEQPACKET, and what happens to fds that are refused. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "proto/chan.h"
#include "tests/unit/check.h"

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	CHECK(d != NULL);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* The fd number the next open will get. */
static int next_fd(void)
{
	int fd = dup(0);
	CHECK(fd >= 0);
	close(fd);
	return fd;
}

static size_t encode(const struct pmsg *m, unsigned char *buf, size_t cap)
{
	struct perr e;
	size_t len = 0;
	CHECK_EQ(pmsg_encode(m, buf, cap, &len, &e), PE_OK);
	return len;
}

TEST(frame_with_two_fds)
{
	int sv[2], p[2];
	unsigned char buf[512], got[512];
	CHECK_EQ(chan_pair(sv), 0);
	CHECK(pipe(p) == 0);
	int mfd = memfd_create("chan-test", 0); /* no CLOEXEC here: the receiver must add it */
	CHECK(mfd >= 0);
	CHECK(write(mfd, "hello", 5) == 5);

	struct pmsg m;
	pmsg_init(&m, PK_REQUEST, OP_PING, 5);
	size_t len = encode(&m, buf, sizeof(buf));
	int fds[2] = {p[0], mfd};
	CHECK_EQ(chan_send(sv[0], buf, len, fds, 2), 0);
	close(p[0]);
	close(mfd);

	int rfds[PROTO_MAX_FDS];
	size_t nr = 99;
	long n = chan_recv(sv[1], got, sizeof(got), rfds, PROTO_MAX_FDS, &nr);
	CHECK_EQ(n, (long)len);
	CHECK(memcmp(buf, got, len) == 0);
	CHECK_EQ(nr, 2);
	for (int i = 0; i < 2; i++)
		CHECK(fcntl(rfds[i], F_GETFD) & FD_CLOEXEC);
	/* they work: the pipe carries bytes, the memfd holds its content */
	char c[8] = {0};
	CHECK(write(p[1], "xy", 2) == 2);
	CHECK(read(rfds[0], c, 2) == 2 && memcmp(c, "xy", 2) == 0);
	CHECK(pread(rfds[1], c, 5, 0) == 5 && memcmp(c, "hello", 5) == 0);

	/* ping declares no fds: attaching them refuses the message and closes both */
	struct pmsg d;
	struct perr e;
	CHECK_EQ(pmsg_decode(&d, got, (size_t)n, &e), PE_OK);
	int r0 = rfds[0], r1 = rfds[1];
	CHECK_EQ(proto_attach_fds(&d, rfds, nr, &e), PE_INVALID);
	CHECK(strstr(e.msg, "2 fds, expected 0") != NULL);
	CHECK(!is_open(r0) && errno == EBADF);
	CHECK(!is_open(r1) && errno == EBADF);
	pmsg_free(&d);
	pmsg_free(&m);
}

TEST(message_with_fd_round_trip)
{
	int sv[2], inner[2];
	CHECK_EQ(chan_pair(sv), 0);
	CHECK_EQ(chan_pair(inner), 0);
	struct pmsg m, d;
	struct perr e = {0};
	pmsg_init(&m, PK_REPLY, OP_SPAWN, 12);
	CHECK_EQ(prec_set_uint(&m, &m.body, "pid", 4242), 0);
	CHECK_EQ(pmsg_add_fd(&m, inner[0]), 0);
	CHECK_EQ(chan_send_msg(sv[0], &m, &e), 0);
	CHECK(is_open(inner[0])); /* still owned by m */
	pmsg_free(&m);
	CHECK(!is_open(inner[0]));

	CHECK_EQ(chan_recv_msg(sv[1], &d, &e), 1);
	CHECK_EQ(e.code, PE_OK);
	CHECK_EQ(d.id, 12);
	CHECK_EQ(d.nfds, 1);
	uint64_t pid = 0;
	CHECK(prec_uint(&d.body, "pid", &pid) && pid == 4242);
	int fd = pmsg_take_fd(&d, 0);
	CHECK(fd >= 0);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	CHECK(send(fd, "z", 1, 0) == 1);
	char c = 0;
	CHECK(recv(inner[1], &c, 1, 0) == 1 && c == 'z');
	pmsg_free(&d);
	CHECK(is_open(fd)); /* taken: not closed by pmsg_free */
	close(fd);
}

TEST(wrong_fd_kind_is_refused_and_closed)
{
	int sv[2], p[2];
	unsigned char buf[512];
	CHECK_EQ(chan_pair(sv), 0);
	CHECK(pipe(p) == 0);
	struct pmsg m, d;
	struct perr e;
	pmsg_init(&m, PK_REPLY, OP_SPAWN, 3);
	CHECK_EQ(prec_set_uint(&m, &m.body, "pid", 7), 0);
	/* the sending side refuses a wrong count (kinds are the receiver's business) */
	CHECK_EQ(chan_send_msg(sv[0], &m, &e), -EINVAL);
	CHECK_STR(e.msg, "'spawn': 0 fds attached, expected 1");
	CHECK_EQ(pmsg_add_fd(&m, p[0]), 0);
	CHECK_EQ(pmsg_add_fd(&m, p[1]), 0);
	CHECK_EQ(chan_send_msg(sv[0], &m, &e), -EINVAL);
	CHECK_EQ(pmsg_take_fd(&m, 0), p[0]);
	CHECK_EQ(pmsg_take_fd(&m, 1), p[1]);
	m.nfds = 0;
	size_t len = encode(&m, buf, sizeof(buf));
	CHECK_EQ(chan_send(sv[0], buf, len, &p[0], 1), 0);
	close(p[0]);
	int before = count_fds();
	int expect_fd = next_fd(); /* the received pipe end lands here */
	CHECK_EQ(chan_recv_msg(sv[1], &d, &e), 1);
	CHECK_EQ(e.code, PE_INVALID);
	CHECK(strstr(e.msg, "fd 0 is not a seqpacket") != NULL);
	CHECK_EQ(d.nfds, 0);
	CHECK(d.op == proto_op(OP_SPAWN));
	CHECK_EQ(d.id, 3);
	CHECK(fcntl(expect_fd, F_GETFD) < 0 && errno == EBADF);
	CHECK_EQ(count_fds(), before);
	pmsg_free(&d);
	pmsg_free(&m);
	close(p[1]);
}

TEST(fd_count_mismatch_closes_all)
{
	int sv[2], a[2], b[2];
	unsigned char buf[512];
	CHECK_EQ(chan_pair(sv), 0);
	CHECK_EQ(chan_pair(a), 0);
	CHECK_EQ(chan_pair(b), 0);
	struct pmsg m, d;
	struct perr e;
	pmsg_init(&m, PK_REPLY, OP_SPAWN, 3);
	CHECK_EQ(prec_set_uint(&m, &m.body, "pid", 7), 0);
	size_t len = encode(&m, buf, sizeof(buf));
	int fds[2] = {a[0], b[0]}; /* two seqpackets where one is declared */
	CHECK_EQ(chan_send(sv[0], buf, len, fds, 2), 0);
	close(a[0]);
	close(b[0]);
	int before = count_fds();
	CHECK_EQ(chan_recv_msg(sv[1], &d, &e), 1);
	CHECK_EQ(e.code, PE_INVALID);
	CHECK(strstr(e.msg, "2 fds, expected 1") != NULL);
	CHECK_EQ(count_fds(), before);
	pmsg_free(&d);

	/* and none where one is declared */
	CHECK_EQ(chan_send(sv[0], buf, len, NULL, 0), 0);
	CHECK_EQ(chan_recv_msg(sv[1], &d, &e), 1);
	CHECK_EQ(e.code, PE_INVALID);
	pmsg_free(&d);
	/* an error reply carries none */
	pmsg_set_error(&m, PE_INTERNAL, "no");
	len = encode(&m, buf, sizeof(buf));
	CHECK_EQ(chan_send(sv[0], buf, len, &a[1], 1), 0);
	CHECK_EQ(chan_recv_msg(sv[1], &d, &e), 1);
	CHECK_EQ(e.code, PE_INVALID);
	CHECK_EQ(count_fds(), before);
	pmsg_free(&d);
	pmsg_free(&m);
}

TEST(truncated_frame_is_refused)
{
	int sv[2], p[2];
	unsigned char buf[100] = {0}, small[50];
	CHECK_EQ(chan_pair(sv), 0);
	CHECK(pipe(p) == 0);
	CHECK_EQ(chan_send(sv[0], buf, sizeof(buf), &p[0], 1), 0);
	close(p[0]);
	int before = count_fds();
	int fds[PROTO_MAX_FDS];
	size_t n = 99;
	CHECK_EQ(chan_recv(sv[1], small, sizeof(small), fds, PROTO_MAX_FDS, &n), -EPROTO);
	CHECK_EQ(n, 0);
	CHECK_EQ(count_fds(), before);
	close(p[1]);

	/* a frame over PROTO_MAX_FRAME, sent around chan_send's own check */
	static unsigned char big[PROTO_MAX_FRAME + 1];
	int sz = 4 * PROTO_MAX_FRAME;
	CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) == 0);
	CHECK(send(sv[0], big, sizeof(big), 0) == (ssize_t)sizeof(big));
	struct pmsg d;
	struct perr e;
	CHECK_EQ(chan_recv_msg(sv[1], &d, &e), -EPROTO);
	pmsg_free(&d);
}

TEST(control_truncation_closes_fds)
{
	int sv[2], p[2], q[2];
	unsigned char buf[16] = {0xc0};
	CHECK_EQ(chan_pair(sv), 0);
	CHECK(pipe(p) == 0 && pipe(q) == 0);
	int before = count_fds();
	/* 4 fds, the receiver allows 2 */
	int four[4] = {p[0], p[1], q[0], q[1]};
	CHECK_EQ(chan_send(sv[0], buf, 1, four, 4), 0);
	int fds[PROTO_MAX_FDS];
	size_t n = 99;
	CHECK_EQ(chan_recv(sv[1], buf, sizeof(buf), fds, 2, &n), -EPROTO);
	CHECK_EQ(n, 0);
	CHECK_EQ(count_fds(), before);

	/* PROTO_MAX_FDS + 1 fds (by hand): the kernel truncates the control data */
	int five[PROTO_MAX_FDS + 1];
	for (int i = 0; i < PROTO_MAX_FDS + 1; i++)
		five[i] = p[i % 2];
	char cbuf[CMSG_SPACE(sizeof(five))] = {0};
	struct iovec iov = {.iov_base = buf, .iov_len = 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(five));
	memcpy(CMSG_DATA(c), five, sizeof(five));
	CHECK(sendmsg(sv[0], &mh, 0) == 1);
	CHECK_EQ(chan_recv(sv[1], buf, sizeof(buf), fds, PROTO_MAX_FDS, &n), -EPROTO);
	CHECK_EQ(count_fds(), before);

	/* chan_recv_msg likewise */
	CHECK(sendmsg(sv[0], &mh, 0) == 1);
	struct pmsg d;
	struct perr e;
	CHECK_EQ(chan_recv_msg(sv[1], &d, &e), -EPROTO);
	CHECK_EQ(count_fds(), before);
	pmsg_free(&d);
}

TEST(send_limits)
{
	int sv[2], fds[PROTO_MAX_FDS + 1] = {0};
	static unsigned char big[PROTO_MAX_FRAME + 1];
	CHECK_EQ(chan_pair(sv), 0);
	CHECK_EQ(chan_send(sv[0], big, sizeof(big), NULL, 0), -EMSGSIZE);
	CHECK_EQ(chan_send(sv[0], big, 0, NULL, 0), -EMSGSIZE);
	CHECK_EQ(chan_send(sv[0], big, 1, fds, PROTO_MAX_FDS + 1), -EINVAL);
	CHECK_EQ(chan_send(sv[0], big, PROTO_MAX_FRAME, NULL, 0), 0); /* the max itself is fine */
	unsigned char *got = malloc(PROTO_MAX_FRAME);
	size_t n;
	CHECK_EQ(chan_recv(sv[1], got, PROTO_MAX_FRAME, fds, PROTO_MAX_FDS, &n), PROTO_MAX_FRAME);
	free(got);

	/* a message that breaks its schema is not sent */
	struct pmsg m;
	struct perr e;
	pmsg_init(&m, PK_REQUEST, OP_SPAWN, 1);
	CHECK_EQ(chan_send_msg(sv[0], &m, &e), -EINVAL);
	CHECK_STR(e.msg, "field 'helper': missing");
	CHECK_EQ(chan_send_msg(sv[0], &m, NULL), -EINVAL);
	pmsg_free(&m);
}

TEST(eof_and_peer_gone)
{
	int sv[2];
	unsigned char buf[16];
	int fds[PROTO_MAX_FDS];
	size_t n;
	struct pmsg d;
	struct perr e;
	CHECK_EQ(chan_pair(sv), 0);
	CHECK_EQ(chan_send(sv[0], "\xc0", 1, NULL, 0), 0);
	close(sv[0]);
	CHECK_EQ(chan_recv(sv[1], buf, sizeof(buf), fds, PROTO_MAX_FDS, &n), 1); /* queued data first */
	CHECK_EQ(chan_recv(sv[1], buf, sizeof(buf), fds, PROTO_MAX_FDS, &n), 0);
	CHECK_EQ(chan_recv_msg(sv[1], &d, &e), 0);
	pmsg_free(&d);
	/* sending to a closed peer: -EPIPE, and no SIGPIPE (this process would die) */
	CHECK_EQ(chan_send(sv[1], "\xc0", 1, NULL, 0), -EPIPE);
}

TEST(nonblocking_empty_is_eagain)
{
	int sv[2], fds[PROTO_MAX_FDS];
	unsigned char buf[16];
	size_t n;
	CHECK_EQ(chan_pair(sv), 0);
	CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
	CHECK_EQ(chan_recv(sv[1], buf, sizeof(buf), fds, PROTO_MAX_FDS, &n), -EAGAIN);
	struct pmsg d;
	struct perr e;
	CHECK_EQ(chan_recv_msg(sv[1], &d, &e), -EAGAIN);
	pmsg_free(&d);
}

TEST(malformed_frame_reported)
{
	int sv[2], p[2];
	CHECK_EQ(chan_pair(sv), 0);
	CHECK(pipe(p) == 0);
	unsigned char junk[] = {0x96, 0x01, 0x00, 0xdd, 0x7f, 0xff, 0xff, 0xff};
	CHECK_EQ(chan_send(sv[0], junk, sizeof(junk), &p[0], 1), 0);
	close(p[0]);
	int before = count_fds();
	struct pmsg d;
	struct perr e;
	CHECK_EQ(chan_recv_msg(sv[1], &d, &e), 1);
	CHECK_EQ(e.code, PE_MALFORMED);
	CHECK(e.msg[0] != '\0');
	CHECK_EQ(count_fds(), before); /* the fd beside it was closed */
	pmsg_free(&d);

	/* unknown op: answerable */
	unsigned char unk[] = {0x96, 0x01, 0x00, 0xa3, 'f', 'o', 'o', 0xcd, 0x01, 0x00, 0x80, 0xc0};
	CHECK_EQ(chan_send(sv[0], unk, sizeof(unk), NULL, 0), 0);
	CHECK_EQ(chan_recv_msg(sv[1], &d, &e), 1);
	CHECK_EQ(e.code, PE_UNKNOWN_OP);
	CHECK_EQ(d.id, 256);
	pmsg_free(&d);
	close(p[1]);
}
