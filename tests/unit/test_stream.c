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

/* A vm_exec request of about 60 KiB (more than a socket buffer may hold): 15 arguments of
 * 4000 bytes, each its own pattern. Encoded whole (header + payload) into buf. */
#define BIG_ARGS 15
#define BIG_ARG	 4000
static void big_arg(int i, char *out)
{
	for (int k = 0; k < BIG_ARG; k++)
		out[k] = (char)('a' + (i * 7 + k) % 26);
	out[BIG_ARG] = 0;
}

static size_t big_message(unsigned char *buf, size_t cap)
{
	struct pmsg m;
	struct perr e;
	char arg[BIG_ARG + 1];
	size_t len = 0;
	pmsg_init(&m, PK_REQUEST, OP_VM_EXEC, 60);
	prec_set_str(&m, &m.body, "name", "big");
	for (int i = 0; i < BIG_ARGS; i++) {
		big_arg(i, arg);
		CHECK_EQ(prec_add_str(&m, &m.body, "argv", arg), 0);
	}
	CHECK_EQ(stream_encode(&m, buf, cap, &len, &e), 0);
	pmsg_free(&m);
	CHECK(len > 60000);
	return len;
}

/* stream_recv_msg got big_message's request, every byte in place. */
static void check_big(int fd)
{
	struct pmsg d;
	struct perr e;
	char arg[BIG_ARG + 1];
	CHECK_EQ(stream_recv_msg(fd, &d, &e), 1);
	CHECK_EQ(e.code, PE_OK);
	CHECK(d.op == proto_op(OP_VM_EXEC));
	CHECK_EQ(d.id, 60);
	const struct pval *v = prec_get(&d.body, "argv");
	CHECK(v && v->list.n == BIG_ARGS);
	for (int i = 0; i < BIG_ARGS; i++) {
		big_arg(i, arg);
		CHECK_STR(v->list.v[i], arg);
	}
	pmsg_free(&d);
}

TEST(blocking_60k_frame)
{
	int sv[2];
	static unsigned char framed[STREAM_HDR + PROTO_MAX_FRAME];
	size_t len = big_message(framed, sizeof(framed));
	struct pmsg m;
	struct perr e;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	/* writer in a child: 60 KiB may not fit in the socket buffer */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(sv[1]);
		pmsg_init(&m, PK_REQUEST, OP_VERSION, 61);
		_exit(stream_write_frame(sv[0], framed + STREAM_HDR, len - STREAM_HDR) == 0 &&
			      stream_send_msg(sv[0], &m, NULL) == 0
			  ? 0
			  : 1);
	}
	close(sv[0]);
	check_big(sv[1]);
	CHECK_EQ(stream_recv_msg(sv[1], &m, &e), 1);
	CHECK_EQ(e.code, PE_OK);
	CHECK(m.op == proto_op(OP_VERSION));
	pmsg_free(&m);
	CHECK_EQ(stream_recv_msg(sv[1], &m, &e), 0); /* EOF at a frame boundary */
	pmsg_free(&m);
	reap(pid);
	close(sv[1]);

	/* the same, arriving in small pieces: short reads in the header and the payload */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid = slow_writer(sv[0], framed, len);
	close(sv[0]);
	check_big(sv[1]);
	CHECK_EQ(stream_recv_msg(sv[1], &m, &e), 0);
	pmsg_free(&m);
	reap(pid);
	close(sv[1]);
}

TEST(write_limits_and_pipes)
{
	int p[2];
	static unsigned char big[PROTO_MAX_FRAME + 1];
	struct pmsg m;
	struct perr e;
	CHECK(pipe(p) == 0);
	CHECK_EQ(stream_write_frame(p[1], big, 0), -EMSGSIZE);
	CHECK_EQ(stream_write_frame(p[1], big, sizeof(big)), -EMSGSIZE);
	pmsg_init(&m, PK_REQUEST, OP_VERSION, 5);
	CHECK_EQ(stream_send_msg(p[1], &m, &e), 0); /* not a socket: writev */
	pmsg_free(&m);
	CHECK_EQ(stream_recv_msg(p[0], &m, &e), 1);
	CHECK_EQ(e.code, PE_OK);
	CHECK(m.op == proto_op(OP_VERSION));
	CHECK_EQ(m.id, 5);
	pmsg_free(&m);
	close(p[0]);
	close(p[1]);
}

TEST(largest_frame)
{
	int sv[2];
	static unsigned char junk[PROTO_MAX_FRAME];
	struct pmsg m;
	struct perr e;
	memset(junk, 0xc1, sizeof(junk)); /* a byte msgpack never uses */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(sv[1]);
		pmsg_init(&m, PK_REQUEST, OP_VERSION, 9);
		_exit(stream_write_frame(sv[0], junk, sizeof(junk)) == 0 && stream_send_msg(sv[0], &m, NULL) == 0 ? 0
														  : 1);
	}
	close(sv[0]);
	/* a frame of PROTO_MAX_FRAME bytes fills the reader's buffer exactly: read whole, refused as
	 * a message, and the stream stays in step */
	CHECK_EQ(stream_recv_msg(sv[1], &m, &e), 1);
	CHECK_EQ(e.code, PE_MALFORMED);
	pmsg_free(&m);
	CHECK_EQ(stream_recv_msg(sv[1], &m, &e), 1);
	CHECK_EQ(e.code, PE_OK);
	CHECK_EQ(m.id, 9);
	pmsg_free(&m);
	reap(pid);
	close(sv[1]);
}

TEST(invalid_length_is_eproto)
{
	int sv[2];
	unsigned char b[8] = {0};
	struct pmsg m;
	struct perr e;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(write(sv[0], b, 4) == 4); /* length 0 */
	CHECK_EQ(stream_recv_msg(sv[1], &m, &e), -EPROTO);
	pmsg_free(&m);
	put_be32(b, PROTO_MAX_FRAME + 1);
	CHECK(write(sv[0], b, 4) == 4);
	CHECK_EQ(stream_recv_msg(sv[1], &m, &e), -EPROTO);
	pmsg_free(&m);
}

TEST(eof_clean_and_mid_frame)
{
	int sv[2];
	unsigned char b[8];
	struct pmsg m;
	struct perr e;

	/* clean EOF */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	close(sv[0]);
	CHECK_EQ(stream_recv_msg(sv[1], &m, &e), 0);
	pmsg_free(&m);
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
