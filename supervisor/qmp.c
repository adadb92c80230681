/* A QMP client for one VM (QEMU's JSON monitor, docs/interop/qmp-spec): greeting, then
 * qmp_capabilities, then commands answered in order. Events are skipped except that the
 * socket's EOF tells the VMM is gone. JSON through jansson. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "common/log.h"
#include "supervisor/supervisor.h"
#include "supervisor/vm.h"

#define QMP_MAX_PENDING 16

struct qmp_pending {
	const char *cmd; /* a constant */
	qmp_reply_cb cb;
	void *arg;
};

struct qmp {
	struct bufferevent *bev;
	bool greeted;
	struct qmp_pending pending[QMP_MAX_PENDING]; /* in order: [0] is answered next */
	unsigned npending;
};

static void qmp_send_raw(struct qmp *q, const char *cmd)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "{\"execute\":\"%s\"}\r\n", cmd);
	bufferevent_write(q->bev, line, (size_t)n);
}

void qmp_command(struct vm *vm, const char *cmd, qmp_reply_cb cb, void *arg)
{
	struct qmp *q = vm->qmp;
	if (!q || q->npending >= QMP_MAX_PENDING) {
		if (cb)
			cb(vm, false, q ? "too many QMP commands in flight" : "no QMP connection", arg);
		return;
	}
	q->pending[q->npending++] = (struct qmp_pending){.cmd = cmd, .cb = cb, .arg = arg};
	if (q->greeted) /* else sent after the greeting and qmp_capabilities */
		qmp_send_raw(q, cmd);
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
	if (json_object_get(j, "QMP") && !q->greeted && q->npending < QMP_MAX_PENDING) {
		/* qmp_capabilities first (its reply goes to no callback), then what was asked
		 * before the greeting came */
		q->greeted = true;
		memmove(&q->pending[1], &q->pending[0], q->npending++ * sizeof(q->pending[0]));
		q->pending[0] = (struct qmp_pending){.cmd = "qmp_capabilities"};
		for (unsigned i = 0; i < q->npending; i++)
			qmp_send_raw(q, q->pending[i].cmd);
	} else if (json_object_get(j, "return") || json_object_get(j, "error")) {
		if (q->npending == 0) {
			log_err("%s: QMP reply without a command", vm->name);
		} else {
			struct qmp_pending p = q->pending[0];
			memmove(&q->pending[0], &q->pending[1], --q->npending * sizeof(q->pending[0]));
			json_t *err = json_object_get(j, "error");
			const char *desc = err ? json_string_value(json_object_get(err, "desc")) : NULL;
			if (err && !p.cb)
				log_err("%s: QMP: %s", vm->name, desc ? desc : "error");
			if (p.cb)
				p.cb(vm, err == NULL, desc ? desc : (err ? "error" : NULL), p.arg);
		}
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
	for (unsigned i = 0; i < q->npending; i++)
		if (q->pending[i].cb)
			q->pending[i].cb(vm, false, "the VMM is gone", q->pending[i].arg);
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
	bufferevent_setcb(q->bev, on_read, NULL, on_event, vm);
	bufferevent_enable(q->bev, EV_READ | EV_WRITE);
	return 0;
}
