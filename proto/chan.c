/* SOCK_SEQPACKET channel: one frame per message, fds beside it as SCM_RIGHTS. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/chan.h"
#include "proto/fdkind.h"

/* Room for PROTO_MAX_FDS fds exactly: one more makes the kernel set MSG_CTRUNC. */
union cmsg_buf {
	char buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
	struct cmsghdr align;
};

int chan_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	return 0;
}

int chan_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
	union cmsg_buf cb;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (len == 0 || len > PROTO_MAX_FRAME || !buf)
		return -EMSGSIZE;
	if (nfds > PROTO_MAX_FDS || (nfds && !fds))
		return -EINVAL;
	if (nfds) {
		memset(&cb, 0, sizeof(cb));
		mh.msg_control = cb.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO; /* seqpacket sends are atomic; never expected */
}

size_t chan_take_fds(const struct msghdr *mh, int *fds, size_t max, bool *other)
{
	size_t total = 0;
	if (other)
		*other = false;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR((struct msghdr *)mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			if (other)
				*other = true;
			continue;
		}
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *d = CMSG_DATA(c);
		for (size_t i = 0; i < k; i++, total++) {
			int fd;
			memcpy(&fd, d + i * sizeof(int), sizeof(int));
			if (total < max)
				fds[total] = fd;
			else
				close(fd);
		}
	}
	return total;
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

long chan_recv(int sock, void *buf, size_t cap, int *fds, size_t maxfds, size_t *nfds)
{
	union cmsg_buf cb;
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf, .msg_controllen = sizeof(cb.buf)};
	int got[PROTO_MAX_FDS];
	bool bad = false;
	ssize_t n;

	*nfds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;

	/* Collect every fd that arrived before judging anything, so that none can leak. */
	size_t ngot = chan_take_fds(&mh, got, PROTO_MAX_FDS, &bad);
	if (ngot > PROTO_MAX_FDS) { /* cannot happen with our buffer size; be safe anyway */
		ngot = PROTO_MAX_FDS;
		bad = true;
	}
	if (bad || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || ngot > maxfds || (n == 0 && ngot)) {
		close_all(got, ngot);
		return -EPROTO;
	}
	if (n == 0)
		return 0; /* chan_send never sends an empty frame: this is the peer closing */
	if (ngot)
		memcpy(fds, got, ngot * sizeof(int));
	*nfds = ngot;
	return (long)n;
}

static int expected_fds(const struct pmsg *m, const enum fd_kind **kinds)
{
	static const enum fd_kind none[PROTO_MAX_FDS];

	*kinds = none;
	if (!m->op)
		return 0;
	if (m->kind == PK_REPLY) {
		if (m->err_code != PE_OK)
			return 0;
		*kinds = m->op->fdk_rep;
		return m->op->nfds_rep;
	}
	*kinds = m->op->fdk_req;
	return m->op->nfds_req;
}

int proto_check_fds(const struct pmsg *m, const int *fds, size_t nfds, struct perr *e)
{
	struct perr local;
	const enum fd_kind *kinds;
	size_t want = (size_t)expected_fds(m, &kinds);

	if (!e)
		e = &local;
	e->code = PE_INVALID;
	if (nfds != want) {
		snprintf(e->msg, sizeof(e->msg), "'%s': %zu fds, expected %zu", m->op ? m->op->name : "?", nfds, want);
		return PE_INVALID;
	}
	for (size_t i = 0; i < nfds; i++) {
		if (!fd_is_kind(fds[i], kinds[i])) {
			snprintf(e->msg, sizeof(e->msg), "'%s': fd %zu is not a %s", m->op->name, i,
				 fd_kind_name(kinds[i]));
			return PE_INVALID;
		}
	}
	e->code = PE_OK;
	e->msg[0] = '\0';
	return PE_OK;
}

int proto_attach_fds(struct pmsg *m, int *fds, size_t nfds, struct perr *e)
{
	struct perr local;
	int rc;

	if (!e)
		e = &local;
	if (nfds > PROTO_MAX_FDS || m->nfds != 0) {
		close_all(fds, nfds);
		e->code = PE_INVALID;
		snprintf(e->msg, sizeof(e->msg), "unexpected fds");
		return PE_INVALID;
	}
	if ((rc = proto_check_fds(m, fds, nfds, e)) != PE_OK) {
		close_all(fds, nfds);
		return rc;
	}
	for (size_t i = 0; i < nfds; i++) {
		m->fds[i] = fds[i];
		fds[i] = -1;
	}
	m->nfds = (uint8_t)nfds;
	return PE_OK;
}

int chan_send_msg(int sock, const struct pmsg *m, struct perr *e)
{
	unsigned char buf[PROTO_MAX_FRAME];
	struct perr local;
	size_t len;
	int rc;

	if (!e)
		e = &local;
	if ((rc = pmsg_encode_frame(m, buf, sizeof(buf), &len, e)) < 0)
		return rc;
	/* A message with the wrong number of fds would be refused: not sent either. Their kinds
	 * are left to the receiver, which must check anyway (and a sandboxed sender might not be
	 * allowed the syscalls that tell). */
	const enum fd_kind *kinds;
	int want = expected_fds(m, &kinds);
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] < 0)
			want = -1;
	if (m->nfds != want) {
		e->code = PE_INVALID;
		snprintf(e->msg, sizeof(e->msg), "'%s': %u fds attached, expected %d", m->op->name, m->nfds, want);
		return -EINVAL;
	}
	return chan_send(sock, buf, len, m->fds, m->nfds);
}

int chan_recv_msg(int sock, struct pmsg *m, struct perr *e)
{
	unsigned char buf[PROTO_MAX_FRAME];
	int fds[PROTO_MAX_FDS];
	size_t nfds = 0;
	struct perr local;
	long n;

	if (!e)
		e = &local;
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < PROTO_MAX_FDS; i++)
		m->fds[i] = -1;
	/* A frame longer than buf arrives with MSG_TRUNC set: chan_recv refuses it. */
	n = chan_recv(sock, buf, sizeof(buf), fds, PROTO_MAX_FDS, &nfds);
	if (n <= 0)
		return (int)n;
	if (pmsg_decode(m, buf, (size_t)n, e) != PE_OK) {
		close_all(fds, nfds);
		return 1;
	}
	proto_attach_fds(m, fds, nfds, e);
	return 1;
}
