/* A QMP client for one VM (QEMU's JSON monitor, docs/interop/qmp-spec): greeting, then
 * qmp_capabilities, then commands, each with an id its answer echoes. Events are skipped
 * except that the socket's EOF tells the VMM is gone. JSON through jansson. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "common/log.h"
#include "supervisor/supervisor.h"
#include "supervisor/vm.h"

#define QMP_MAX_PENDING 16

struct qmp {
	struct bufferevent *bev;
	bool greeted;
	struct pending_table calls;
	json_t *ret; /* the "return" of the reply being completed, for its callback */
};

/* A command's own callback, which takes the VM too (none for qmp_capabilities and quit). */
struct qmp_call {
	struct vm *vm;
	qmp_reply_cb cb;
	void *arg;
};

/* reply: PE_OK, PE_INTERNAL with QEMU's error, or PE_UNAVAILABLE when the VMM has gone. */
static void on_call_done(struct pmsg *reply, void *arg)
{
	struct qmp_call c = *(struct qmp_call *)arg;
	bool ok = reply->err_code == PE_OK;
	free(arg);
	if (c.cb)
		c.cb(c.vm, ok, reply->err_msg, ok && c.vm->qmp ? c.vm->qmp->ret : NULL, c.arg);
	else if (!ok && reply->err_code != PE_UNAVAILABLE)
		log_err("%s: QMP: %s", c.vm->name, reply->err_msg);
}

/* The command's line goes out with FD beside its first byte (SCM_RIGHTS), which QEMU
 * takes for the command it is reading (getfd). Only with nothing else queued: the fd must
 * not travel with another command's bytes. */
static int send_with_fd(struct qmp *q, const char *line, size_t n, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = (void *)line, .iov_len = n};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (!q->greeted || evbuffer_get_length(bufferevent_get_output(q->bev)) > 0)
		return -EBUSY;
	ssize_t w = sendmsg(bufferevent_getfd(q->bev), &mh, MSG_NOSIGNAL);
	if (w < 0)
		return -errno;
	/* the rest (a line is far below a socket buffer: rarely any) in order, fd-less */
	if ((size_t)w < n)
		bufferevent_write(q->bev, line + w, n - (size_t)w);
	return 0;
}

void qmp_execute(struct vm *vm, const char *cmd, json_t *args, int fd, qmp_reply_cb cb, void *arg)
{
	struct qmp *q = vm->qmp;
	const char *why = !q						? "no QMP connection"
			  : pending_count(&q->calls) >= QMP_MAX_PENDING ? "too many QMP commands in flight"
									: NULL;
	if (why) {
		json_decref(args);
		if (cb)
			cb(vm, false, why, NULL, arg);
		return;
	}
	struct qmp_call *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	*c = (struct qmp_call){.vm = vm, .cb = cb, .arg = arg};
	uint32_t id = pending_add(&q->calls, 0, on_call_done, c);
	json_t *j = json_pack("{s:s, s:I}", "execute", cmd, "id", (json_int_t)id);
	if (args)
		json_object_set_new(j, "arguments", args);
	char *line = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!line)
		abort();
	size_t n = strlen(line);
	int rc = 0;
	if (fd >= 0) {
		/* the fd goes with the whole line, CRLF included, in one sendmsg */
		char *full = malloc(n + 3);
		if (!full)
			abort();
		snprintf(full, n + 3, "%s\r\n", line);
		rc = send_with_fd(q, full, n + 2, fd);
		free(full);
	} else {
		bufferevent_write(q->bev, line, n); /* goes out once greeted: see qmp_open */
		bufferevent_write(q->bev, "\r\n", 2);
	}
	free(line);
	if (rc < 0) {
		struct pmsg r;
		pmsg_init(&r, PK_REPLY, OP_PING, id);
		pmsg_set_error(&r, PE_BUSY, "cannot pass an fd to QEMU now: %s", strerror(-rc));
		pending_complete(&q->calls, &r);
		pmsg_free(&r);
	}
}

void qmp_command(struct vm *vm, const char *cmd, qmp_reply_cb cb, void *arg)
{
	qmp_execute(vm, cmd, NULL, -1, cb, arg);
}

static void on_line(struct vm *vm, const char *line, size_t len)
{
	struct qmp *q = vm->qmp;
	json_error_t jerr;
	json_t *j = json_loadb(line, len, 0, &jerr);
	if (!j || !json_is_object(j)) {
		log_err("%s: QMP sent something that is not a JSON object: %s", vm->name, jerr.text);
		json_decref(j);
		return;
	}
	if (json_object_get(j, "QMP") && !q->greeted) {
		q->greeted = true;
		bufferevent_enable(q->bev, EV_WRITE);
	} else if (json_object_get(j, "return") || json_object_get(j, "error")) {
		json_int_t id = json_integer_value(json_object_get(j, "id")); /* 0 if none */
		json_t *err = json_object_get(j, "error");
		const char *desc = err ? json_string_value(json_object_get(err, "desc")) : NULL;
		struct pmsg r;
		pmsg_init(&r, PK_REPLY, OP_PING, (uint32_t)id);
		if (err)
			pmsg_set_error(&r, PE_INTERNAL, "%s", desc ? desc : "error");
		/* the callback may close QMP: q is not used after it */
		q->ret = json_object_get(j, "return");
		if (id <= 0 || id > UINT32_MAX || !pending_complete(&q->calls, &r))
			log_err("%s: QMP reply without a command", vm->name);
		if (vm->qmp == q)
			q->ret = NULL;
		pmsg_free(&r);
	}
	/* events ({"event": ...}) need nothing: the VMM's end shows as EOF */
	json_decref(j);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct vm *vm = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t len;
	while (vm->qmp && (line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF))) {
		on_line(vm, line, len);
		free(line);
	}
	if (vm->qmp && evbuffer_get_length(in) > 1024 * 1024) {
		log_err("%s: QMP line too long; closing", vm->name);
		qmp_close(vm);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct vm *vm = arg;
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		qmp_close(vm);
		vm_vmm_gone(vm);
	}
}

void qmp_close(struct vm *vm)
{
	struct qmp *q = vm->qmp;
	if (!q)
		return;
	vm->qmp = NULL;
	bufferevent_free(q->bev);
	pending_fail_all(&q->calls, PE_UNAVAILABLE, "the VMM is gone");
	free(q);
}

int qmp_open(struct vm *vm)
{
	int fd = vm_connect(vm, "qmp.sock");
	if (fd < 0)
		return fd;
	struct qmp *q = calloc(1, sizeof(*q));
	if (!q || !(q->bev = bufferevent_socket_new(vm->sup->base, fd, BEV_OPT_CLOSE_ON_FREE))) {
		free(q);
		close(fd);
		return -ENOMEM;
	}
	vm->qmp = q;
	pending_init(&q->calls, vm->sup->base, "QMP");
	bufferevent_setcb(q->bev, on_read, NULL, on_event, vm);
	/* Nothing is written before QEMU's greeting; then qmp_capabilities, queued first, and
	 * whatever was asked meanwhile, in order. */
	bufferevent_disable(q->bev, EV_WRITE);
	bufferevent_enable(q->bev, EV_READ);
	qmp_command(vm, "qmp_capabilities", NULL, NULL);
	return 0;
}
