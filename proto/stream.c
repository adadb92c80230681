/* Length-prefixed frames on byte streams: 4-byte big-endian length, then the payload. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto/stream.h"

int stream_frame_peek(const void *buf, size_t len, size_t *payload_len)
{
	const unsigned char *p = buf;

	if (len < STREAM_HDR)
		return 0;
	uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (n == 0 || n > PROTO_MAX_FRAME)
		return -1;
	/* Set as soon as the header is complete: a caller may use it to wait for the rest. */
	*payload_len = n;
	return len - STREAM_HDR >= n ? 1 : 0;
}

/* Write all of iov; sockets get MSG_NOSIGNAL (a closed peer is -EPIPE, not SIGPIPE). */
static int write_all(int fd, struct iovec *iov, int iovcnt)
{
	bool sock = true;

	while (iovcnt > 0) {
		ssize_t n;
		if (sock) {
			struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
			n = sendmsg(fd, &mh, MSG_NOSIGNAL);
			if (n < 0 && errno == ENOTSOCK) {
				sock = false;
				continue;
			}
		} else {
			n = writev(fd, iov, iovcnt);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int stream_write_frame(int fd, const void *buf, size_t len)
{
	unsigned char hdr[STREAM_HDR] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
					 (unsigned char)(len >> 8), (unsigned char)len};
	struct iovec iov[2] = {{.iov_base = hdr, .iov_len = STREAM_HDR}, {.iov_base = (void *)buf, .iov_len = len}};

	if (len == 0 || len > PROTO_MAX_FRAME || !buf)
		return -EMSGSIZE;
	return write_all(fd, iov, 2);
}

/* Read exactly len bytes. Returns 0, -EPIPE on EOF (*got says how many arrived), or -errno. */
static int read_all(int fd, void *buf, size_t len, size_t *got)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = read(fd, (char *)buf + *got, len - *got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		*got += (size_t)n;
	}
	return 0;
}

/* Returns 0, 1 on EOF before the first byte of a frame, or -errno (-EPIPE: EOF mid-frame). */
static int read_frame(int fd, void *buf, size_t cap, size_t *len)
{
	unsigned char hdr[STREAM_HDR];
	size_t got, n;
	int rc;

	if ((rc = read_all(fd, hdr, STREAM_HDR, &got)) < 0)
		return rc == -EPIPE && got == 0 ? 1 : rc;
	if (stream_frame_peek(hdr, STREAM_HDR, &n) < 0)
		return -EPROTO;
	if (n > cap)
		return -EMSGSIZE;
	if ((rc = read_all(fd, buf, n, &got)) < 0)
		return rc;
	*len = n;
	return 0;
}

int stream_encode(const struct pmsg *m, void *buf, size_t cap, size_t *len, struct perr *e)
{
	unsigned char *b = buf;
	struct perr local;
	size_t n;
	int rc;

	if (!e)
		e = &local;
	if (cap < STREAM_HDR)
		return -EMSGSIZE;
	if ((rc = pmsg_encode_frame(m, b + STREAM_HDR, cap - STREAM_HDR, &n, e)) < 0)
		return rc;
	/* No fds travel on streams: a message that needs some cannot be sent here. */
	if (m->nfds) {
		e->code = PE_INVALID;
		snprintf(e->msg, sizeof(e->msg), "'%s': fds cannot travel on a stream", m->op->name);
		return -EINVAL;
	}
	if (proto_check_fds(m, NULL, 0, e) != PE_OK)
		return -EINVAL;
	b[0] = (unsigned char)(n >> 24);
	b[1] = (unsigned char)(n >> 16);
	b[2] = (unsigned char)(n >> 8);
	b[3] = (unsigned char)n;
	*len = STREAM_HDR + n;
	return 0;
}

int stream_send_msg(int fd, const struct pmsg *m, struct perr *e)
{
	unsigned char buf[STREAM_HDR + PROTO_MAX_FRAME];
	size_t len;
	int rc = stream_encode(m, buf, sizeof(buf), &len, e);
	if (rc < 0)
		return rc;
	return stream_write_frame(fd, buf + STREAM_HDR, len - STREAM_HDR);
}

int stream_recv_msg(int fd, struct pmsg *m, struct perr *e)
{
	unsigned char buf[PROTO_MAX_FRAME];
	struct perr local;
	size_t len = 0;
	int rc;

	if (!e)
		e = &local;
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < PROTO_MAX_FDS; i++)
		m->fds[i] = -1;
	rc = read_frame(fd, buf, sizeof(buf), &len);
	if (rc == 1)
		return 0;
	if (rc < 0)
		return rc;
	if (pmsg_decode(m, buf, len, e) == PE_OK)
		proto_attach_fds(m, NULL, 0, e); /* refuses an op that needs fds */
	return 1;
}

int stream_send_msg_fds(int sock, const struct pmsg *m, struct perr *e)
{
	unsigned char buf[STREAM_HDR + PROTO_MAX_FRAME];
	struct perr local;
	size_t n;
	int rc;

	if (!e)
		e = &local;
	if ((rc = pmsg_encode_frame(m, buf + STREAM_HDR, sizeof(buf) - STREAM_HDR, &n, e)) < 0)
		return rc;
	if (proto_check_fds(m, m->fds, m->nfds, e) != PE_OK)
		return -EINVAL;
	buf[0] = (unsigned char)(n >> 24);
	buf[1] = (unsigned char)(n >> 16);
	buf[2] = (unsigned char)(n >> 8);
	buf[3] = (unsigned char)n;
	n += STREAM_HDR;
	union {
		char b[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
		struct cmsghdr align;
	} cbuf = {0};
	struct iovec iov = {buf, n};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (m->nfds) {
		mh.msg_control = cbuf.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * m->nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * m->nfds);
		memcpy(CMSG_DATA(c), m->fds, sizeof(int) * m->nfds);
	}
	ssize_t w;
	while ((w = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (w < 0)
		return -errno;
	/* the fds went with the first byte; the rest of the frame follows plainly */
	size_t off = (size_t)w;
	while (off < n) {
		w = send(sock, buf + off, n - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		off += (size_t)w;
	}
	return 0;
}
