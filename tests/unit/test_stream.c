/* proto/stream.c: length-prefixed frames on byte streams. */
#include <fcntl.h>
#include <sys/socket.h>

#include "proto/stream.h"
#include "tests/unit/check.h"

static void put_be32(unsigned char *p, uint32_t n)
{
	p[0] = (unsigned char)(n >> 24);
	p[1] = (unsigned char)(n >> 16);
	p[2] = (unsigned char)(n >> 8);
	p[3] = (unsigned char)n;
}

TEST(peek_partial_exact_and_bad)
{
	unsigned char b[STREAM_HDR + 10] = {0};
	size_t n = 12345;
	put_be32(b, 10);
	for (size_t k = 0; k < STREAM_HDR; k++) {
		CHECK_EQ(stream_frame_peek(b, k, &n), 0);
		CHECK_EQ(n, 12345); /* header incomplete: not set */
	}
	for (size_t k = STREAM_HDR; k < sizeof(b); k++) {
		n = 0;
		CHECK_EQ(stream_frame_peek(b, k, &n), 0);
		CHECK_EQ(n, 10); /* header complete: the length is known */
	}
	CHECK_EQ(stream_frame_peek(b, sizeof(b), &n), 1);
	CHECK_EQ(n, 10);
	put_be32(b, 0);
	CHECK_EQ(stream_frame_peek(b, sizeof(b), &n), -1);
	CHECK_EQ(stream_frame_peek(b, STREAM_HDR, &n), -1);
	put_be32(b, PROTO_MAX_FRAME + 1);
	CHECK_EQ(stream_frame_peek(b, STREAM_HDR, &n), -1);
	put_be32(b, 0xffffffffu);
	CHECK_EQ(stream_frame_peek(b, STREAM_HDR, &n), -1);
	put_be32(b, PROTO_MAX_FRAME);
	CHECK_EQ(stream_frame_peek(b, STREAM_HDR, &n), 0);
	CHECK_EQ(n, PROTO_MAX_FRAME);
}

TEST(peek_two_frames_back_to_back)
{
	unsigned char b[32];
	size_t off = 0, n, seen = 0;
	put_be32(b, 3);
	memcpy(b + 4, "abc", 3);
	put_be32(b + 7, 5);
	memcpy(b + 11, "defgh", 5);
	put_be32(b + 16, 2); /* a third one, incomplete */
	b[20] = 'x';
	size_t len = 21;
	const char *want[] = {"abc", "defgh"};
	int r;
	while ((r = stream_frame_peek(b + off, len - off, &n)) == 1) {
		CHECK(seen < 2);
		CHECK_EQ(n, strlen(want[seen]));
		CHECK(memcmp(b + off + STREAM_HDR, want[seen], n) == 0);
		off += STREAM_HDR + n;
		seen++;
	}
	CHECK_EQ(r, 0);
	CHECK_EQ(seen, 2);
	CHECK_EQ(off, 16);
	CHECK_EQ(n, 2);
}

/* A child writes `len` bytes of buf to fd in small pieces with pauses, then exits. */
static pid_t slow_writer(int fd, const void *buf, size_t len)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		const unsigned char *p = buf;
		size_t sizes[] = {1, 2, 3, 700, 4096};
		size_t off = 0;
		for (int i = 0; off < len; i++) {
			size_t k = sizes[i % 5] < len - off ? sizes[i % 5] : len - off;
			ssize_t w = write(fd, p + off, k);
			if (w <= 0)
				_exit(1);
			off += (size_t)w;
			if (i < 5)
				usleep(2000);
		}
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(blocking_60k_frame)
{
	int sv[2];
	size_t sz = 60 * 1024, len = 0;
	unsigned char *msg = malloc(sz), *got = malloc(PROTO_MAX_FRAME);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	for (size_t i = 0; i < sz; i++)
		msg[i] = (unsigned char)(i * 7 + 3);
	/* writer in a child: 60 KiB may not fit in the socket buffer */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(sv[1]);
		_exit(stream_write_frame(sv[0], msg, sz) == 0 && stream_write_frame(sv[0], "x", 1) == 0 ? 0 : 1);
	}
	close(sv[0]);
	CHECK_EQ(stream_read_frame(sv[1], got, PROTO_MAX_FRAME, &len), 0);
	CHECK_EQ(len, sz);
	CHECK(memcmp(got, msg, sz) == 0);
	CHECK_EQ(stream_read_frame(sv[1], got, PROTO_MAX_FRAME, &len), 0);
	CHECK_EQ(len, 1);
	CHECK_EQ(stream_read_frame(sv[1], got, PROTO_MAX_FRAME, &len), -EPIPE); /* EOF */
	reap(pid);

	/* the same, arriving in small pieces: short reads in the header and the payload */
	unsigned char *framed = malloc(STREAM_HDR + sz);
	put_be32(framed, (uint32_t)sz);
	memcpy(framed + STREAM_HDR, msg, sz);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid = slow_writer(sv[0], framed, STREAM_HDR + sz);
	close(sv[0]);
	CHECK_EQ(stream_read_frame(sv[1], got, PROTO_MAX_FRAME, &len), 0);
	CHECK_EQ(len, sz);
	CHECK(memcmp(got, msg, sz) == 0);
	reap(pid);
	free(framed);
	free(msg);
	free(got);
}

TEST(write_limits_and_pipes)
{
	int p[2];
	unsigned char got[16];
	size_t len;
	static unsigned char big[PROTO_MAX_FRAME + 1];
	CHECK(pipe(p) == 0);
	CHECK_EQ(stream_write_frame(p[1], big, 0), -EMSGSIZE);
	CHECK_EQ(stream_write_frame(p[1], big, sizeof(big)), -EMSGSIZE);
	CHECK_EQ(stream_write_frame(p[1], "hello", 5), 0); /* not a socket: writev */
	CHECK_EQ(stream_read_frame(p[0], got, sizeof(got), &len), 0);
	CHECK_EQ(len, 5);
	CHECK(memcmp(got, "hello", 5) == 0);
	/* a frame bigger than the caller's buffer */
	CHECK_EQ(stream_write_frame(p[1], "0123456789abcdefXYZ", 19), 0);
	CHECK_EQ(stream_read_frame(p[0], got, sizeof(got), &len), -EMSGSIZE);
}

TEST(invalid_length_is_eproto)
{
	int sv[2];
	unsigned char b[8] = {0}, got[16];
	size_t len;
	struct pmsg m;
	struct perr e;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(write(sv[0], b, 4) == 4); /* length 0 */
	CHECK_EQ(stream_read_frame(sv[1], got, sizeof(got), &len), -EPROTO);
	put_be32(b, PROTO_MAX_FRAME + 1);
	CHECK(write(sv[0], b, 4) == 4);
	CHECK_EQ(stream_recv_msg(sv[1], &m, &e), -EPROTO);
	pmsg_free(&m);
}

TEST(eof_clean_and_mid_frame)
{
	int sv[2];
	unsigned char b[8], got[128];
	size_t len;
	struct pmsg m;
	struct perr e;

	/* clean EOF: recv_msg 0, read_frame -EPIPE */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	close(sv[0]);
	CHECK_EQ(stream_recv_msg(sv[1], &m, &e), 0);
	pmsg_free(&m);
	CHECK_EQ(stream_read_frame(sv[1], got, sizeof(got), &len), -EPIPE);
	close(sv[1]);

	/* EOF inside the header */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(write(sv[0], "\0\0", 2) == 2);
	close(sv[0]);
	CHECK_EQ(stream_recv_msg(sv[1], &m, &e), -EPIPE);
	pmsg_free(&m);
	close(sv[1]);

	/* EOF inside the payload */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	put_be32(b, 100);
	memset(b + 4, 'a', 4);
	CHECK(write(sv[0], b, 8) == 8);
	close(sv[0]);
	CHECK_EQ(stream_recv_msg(sv[1], &m, &e), -EPIPE);
	pmsg_free(&m);
	close(sv[1]);

	/* and with stream_read_frame */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(write(sv[0], b, 8) == 8);
	close(sv[0]);
	CHECK_EQ(stream_read_frame(sv[1], got, sizeof(got), &len), -EPIPE);
	close(sv[1]);
}

TEST(peer_gone_is_epipe_not_sigpipe)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	close(sv[1]);
	CHECK_EQ(stream_write_frame(sv[0], "x", 1), -EPIPE);
}

TEST(messages_round_trip)
{
	int sv[2];
	struct pmsg m, d;
	struct perr e;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);

	/* a status reply with every process slot and long paths: a big message */
	char path[4097];
	memset(path, '/', 4096);
	path[4096] = '\0';
	pmsg_init(&m, PK_REPLY, OP_STATUS, 77);
	prec_set_str(&m, &m.body, "version", "0.1.0");
	prec_set_str(&m, &m.body, "mode", "system");
	prec_set_str(&m, &m.body, "state_dir", path);
	prec_set_str(&m, &m.body, "socket", path);
	prec_set_uint(&m, &m.body, "owner_uid", 0);
	for (int i = 0; i < 8; i++) {
		struct precord *r = prec_add_record(&m, &m.body, "processes");
		CHECK(r != NULL);
		prec_set_str(&m, r, "name", "netd");
		prec_set_uint(&m, r, "pid", 1);
		prec_set_uint(&m, r, "uid", 2);
		prec_set_uint(&m, r, "gid", 3);
		prec_set_uint(&m, r, "capeff", UINT64_MAX);
		for (int k = 0; k < 64; k++)
			CHECK_EQ(prec_add_str(&m, r, "caps", "cap_0123456789_0123456789_01234"), 0);
		prec_set_uint(&m, r, "seccomp", 2);
		prec_set_bool(&m, r, "no_new_privs", true);
		prec_set_bool(&m, r, "dumpable", false);
		prec_set_str(&m, r, "mode", "system");
		prec_set_uint(&m, r, "started_ms", 5);
	}
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(stream_send_msg(sv[0], &m, &e) == 0 ? 0 : 1);
	CHECK_EQ(stream_recv_msg(sv[1], &d, &e), 1);
	CHECK_EQ(e.code, PE_OK);
	CHECK_EQ(d.id, 77);
	const struct pval *v = prec_get(&d.body, "processes");
	CHECK(v && v->recs.n == 8);
	CHECK_EQ(prec_get(&v->recs.v[7], "caps")->list.n, 64);
	CHECK_EQ(strlen(prec_str(&d.body, "socket")), 4096);
	reap(pid);
	pmsg_free(&d);
	pmsg_free(&m);

	/* no fds on streams: not sent with one, refused when the op needs one */
	int p[2];
	CHECK(pipe(p) == 0);
	pmsg_init(&m, PK_REPLY, OP_SPAWN, 1);
	prec_set_uint(&m, &m.body, "pid", 9);
	CHECK_EQ(stream_send_msg(sv[0], &m, &e), -EINVAL); /* needs its fd */
	pmsg_add_fd(&m, p[0]);
	CHECK_EQ(stream_send_msg(sv[0], &m, &e), -EINVAL);
	CHECK(strstr(e.msg, "stream") != NULL);
	unsigned char buf[256];
	size_t len;
	CHECK_EQ(pmsg_encode(&m, buf, sizeof(buf), &len, &e), PE_OK);
	CHECK_EQ(stream_write_frame(sv[0], buf, len), 0);
	CHECK_EQ(stream_recv_msg(sv[1], &d, &e), 1);
	CHECK_EQ(e.code, PE_INVALID);
	pmsg_free(&d);
	pmsg_free(&m);
	close(p[1]);

	/* a malformed frame is reported, the stream stays in step */
	CHECK_EQ(stream_write_frame(sv[0], "\xc1", 1), 0);
	pmsg_init(&m, PK_REQUEST, OP_VERSION, 3);
	CHECK_EQ(stream_send_msg(sv[0], &m, NULL), 0);
	pmsg_free(&m);
	CHECK_EQ(stream_recv_msg(sv[1], &d, &e), 1);
	CHECK_EQ(e.code, PE_MALFORMED);
	pmsg_free(&d);
	CHECK_EQ(stream_recv_msg(sv[1], &d, &e), 1);
	CHECK_EQ(e.code, PE_OK);
	CHECK(d.op == proto_op(OP_VERSION));
	pmsg_free(&d);
}
