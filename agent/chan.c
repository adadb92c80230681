/* The host channel: a virtio-serial port (guest), an inherited socket or a listening unix
 * socket (tests). Reads are framed here and handed to dispatch_frame(); writes go through a
 * non-blocking queue. When the host goes away the queue is simply dropped: replies are lost
 * with their connection, and output and exits are sent again from session state after the
 * next agent_hello. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/util.h"
#include "proto/stream.h"

#define RBUF_CAP    (2 * (STREAM_HDR + PROTO_MAX_FRAME))
#define VIRTIO_WAIT 250 /* ms between looks at a hung-up port (SIGIO usually comes first) */

static struct chan *const ch = &ag.ch;

static void host_init(enum host_mode mode)
{
	ch->mode = mode;
	ch->fd = -1;
	ch->lfd = -1;
	ch->rbuf = malloc(RBUF_CAP);
	if (!ch->rbuf)
		abort();
}

int host_open_fd(int fd)
{
	host_init(CHAN_FD);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		aerr("channel fd %d: %s", fd, strerror(errno));
		return -1;
	}
	ch->fd = fd;
	return 0;
}

int host_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	host_init(CHAN_LISTEN);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		aerr("%s: path too long", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	ch->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ch->lfd < 0 || bind(ch->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ch->lfd, 4) < 0) {
		aerr("listen %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* /sys/class/virtio-ports/vportNpM/name holds the port's name; the device is /dev/vportNpM. */
static int virtio_find(const char *name, char *dev, size_t devlen)
{
	return sysfs_find_dev("/sys/class/virtio-ports", "", "name", name, dev, devlen) ? 0 : -1;
}

static void virtio_try_open(void)
{
	char dev[300];

	if (virtio_find(ch->port, dev, sizeof(dev)) < 0)
		return;
	ch->fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (ch->fd < 0) {
		aerr("%s: %s", dev, strerror(errno));
		return;
	}
	/* The port raises SIGIO when the host connects: no need to poll a hung-up port often. */
	fcntl(ch->fd, F_SETOWN, getpid());
	fcntl(ch->fd, F_SETFL, fcntl(ch->fd, F_GETFL) | O_ASYNC);
	alog("channel %s", dev);
}

void host_open_virtio(const char *port)
{
	host_init(CHAN_VIRTIO);
	snprintf(ch->port, sizeof(ch->port), "%s", port);
	/* The device node appears when virtio_console has probed: give it a moment at boot. */
	for (int i = 0; i < 500 && ch->fd < 0; i++) {
		virtio_try_open();
		if (ch->fd < 0)
			usleep(10000);
	}
	if (ch->fd < 0)
		aerr("virtio port %s not found; still looking", port);
}

/* The host is gone (or spoke garbage): forget the connection's bytes, keep the sessions. */
static void host_gone(const char *why)
{
	if (ch->synced)
		alog("host gone: %s", why);
	ch->rlen = 0;
	ch->whead = ch->wlen = 0;
	ch->synced = false;
	switch (ch->mode) {
	case CHAN_FD:
		if (ag.exit_on_eof || ag.shutting_down)
			agent_exit(0);
		close_fdp(&ch->fd);
		break;
	case CHAN_LISTEN:
		close_fdp(&ch->fd);
		break;
	case CHAN_VIRTIO:
		/* The port stays open; it polls POLLHUP until a host connects again. */
		ch->hup = true;
		ch->retry_ms = now_mono_ms() + VIRTIO_WAIT;
		break;
	}
}

/* A frame that does not decode: the stream cannot be trusted past it. */
void host_malformed(void)
{
	if (ch->mode == CHAN_VIRTIO)
		ch->rlen = 0; /* discard what is buffered; the host resynchronises with a hello */
	else
		host_gone("malformed frame");
}

void host_sigio(void)
{
	if (ch->mode == CHAN_VIRTIO && ch->hup)
		ch->retry_ms = 0;
}

int host_pollfds(struct pollfd *p, uint64_t now, int *timeout)
{
	short ev = 0;

	if (ch->mode == CHAN_LISTEN && ch->fd < 0) {
		p[0] = (struct pollfd){.fd = ch->lfd, .events = POLLIN};
		return 1;
	}
	if (ch->mode == CHAN_VIRTIO && (ch->fd < 0 || ch->hup)) {
		if (now < ch->retry_ms) {
			*timeout = (int)(ch->retry_ms - now);
			return 0;
		}
		if (ch->fd < 0) {
			virtio_try_open();
			if (ch->fd < 0) {
				ch->retry_ms = now + 1000;
				*timeout = 1000;
				return 0;
			}
		}
		/* Look once more; a hung-up port answers POLLHUP at once. */
		ch->hup = false;
	}
	if (ch->fd < 0)
		return 0;
	if (ch->wlen - ch->whead < WQ_READ_STOP)
		ev |= POLLIN;
	if (ch->wlen > ch->whead)
		ev |= POLLOUT;
	p[0] = (struct pollfd){.fd = ch->fd, .events = ev};
	return 1;
}

static void host_accept(void)
{
	int fd = accept4(ch->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			aerr("accept: %s", strerror(errno));
		return;
	}
	ch->fd = fd;
	ch->rlen = 0;
	ch->whead = ch->wlen = 0;
	ch->synced = false;
}

/* Read what is there and dispatch every whole frame. Returns false if the host is gone. */
static bool host_read(void)
{
	ssize_t n = read(ch->fd, ch->rbuf + ch->rlen, RBUF_CAP - ch->rlen);
	size_t off = 0, plen;
	int r;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0) {
		host_gone(n == 0 ? "eof" : strerror(errno));
		return false;
	}
	ch->rlen += (size_t)n;
	while ((r = stream_frame_peek(ch->rbuf + off, ch->rlen - off, &plen)) == 1) {
		const unsigned char *frame = ch->rbuf + off + STREAM_HDR;
		off += STREAM_HDR + plen;
		dispatch_frame(frame, plen);
		if (ch->rlen == 0) /* dispatch dropped the connection */
			return false;
	}
	if (r < 0) {
		aerr("bad frame length from the host");
		if (ch->mode == CHAN_VIRTIO) {
			ch->rlen = 0; /* discard; the host resynchronises with a hello */
			return true;
		}
		host_gone("bad frame");
		return false;
	}
	memmove(ch->rbuf, ch->rbuf + off, ch->rlen - off);
	ch->rlen -= off;
	return true;
}

void host_flush(void)
{
	while (ch->fd >= 0 && !ch->hup && ch->wlen > ch->whead) {
		ssize_t n = write(ch->fd, ch->wq + ch->whead, ch->wlen - ch->whead);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			host_gone(strerror(errno));
			return;
		}
		ch->whead += (size_t)n;
	}
	if (ch->whead == ch->wlen)
		ch->whead = ch->wlen = 0;
}

void host_events(const struct pollfd *p, int n)
{
	if (n == 0)
		return;
	if (ch->mode == CHAN_LISTEN && ch->fd < 0) {
		if (p[0].revents & POLLIN)
			host_accept();
		return;
	}
	if (p[0].revents & POLLIN && !host_read())
		return;
	if (p[0].revents & POLLOUT)
		host_flush();
	if (p[0].revents & (POLLHUP | POLLERR) && !(p[0].revents & POLLIN) && ch->fd >= 0 && !ch->hup)
		host_gone("hangup");
}

void host_send_raw(const void *p, size_t n)
{
	if (ch->fd < 0 || ch->hup)
		return;
	if (ch->whead > 0 && ch->whead == ch->wlen)
		ch->whead = ch->wlen = 0;
	if (ch->wlen + n > ch->wcap) {
		/* compact first: the written head is dead */
		memmove(ch->wq, ch->wq + ch->whead, ch->wlen - ch->whead);
		ch->wlen -= ch->whead;
		ch->whead = 0;
	}
	if (ch->wlen + n > ch->wcap) {
		size_t cap = ch->wcap ? ch->wcap : 65536;
		while (cap < ch->wlen + n)
			cap *= 2;
		unsigned char *q = realloc(ch->wq, cap);
		if (!q)
			abort();
		ch->wq = q;
		ch->wcap = cap;
	}
	memcpy(ch->wq + ch->wlen, p, n);
	ch->wlen += n;
}

void host_send(const struct pmsg *m)
{
	static unsigned char buf[STREAM_HDR + PROTO_MAX_FRAME];
	struct perr e;
	size_t len;

	if (stream_encode(m, buf, sizeof(buf), &len, &e) < 0) {
		aerr("cannot encode %s: %s", m->op->name, e.msg);
		return;
	}
	host_send_raw(buf, len);
}

bool host_output_room(void)
{
	return ch->fd >= 0 && !ch->hup && ch->synced && ch->wlen - ch->whead < WQ_OUTPUT;
}

void host_drain(int ms)
{
	uint64_t end = now_mono_ms() + (uint64_t)ms;

	while (ch->fd >= 0 && !ch->hup && ch->wlen > ch->whead) {
		uint64_t now = now_mono_ms();
		if (now >= end)
			return;
		struct pollfd p = {.fd = ch->fd, .events = POLLOUT};
		if (poll(&p, 1, (int)(end - now)) <= 0)
			return;
		host_flush();
	}
}
