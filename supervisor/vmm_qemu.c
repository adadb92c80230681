/* The QEMU backend (vmm.h) over QMP (qmp.c). Saving and restoring are QEMU 7.2's migration
 * with x-ignore-shared, set on both sides: the RAM, a shared memfd on the source and the
 * snapshot's template mapped private on a clone, is not in the stream, which holds only
 * device state. Saving: getfd (the state file), migrate fd:NAME, query-migrate until done.
 * Restoring: the VMM waits with -incoming defer; migrate-incoming fd:N (the fd the launcher
 * placed), query-migrate until done, cont. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "supervisor/supervisor.h"
#include "supervisor/vm.h"
#include "supervisor/vmm.h"

#define POLL_MS	       1
#define MIGRATE_MAX_MS 60000
#define STATE_FD_NAME  "fcvm-state"

/* The operation in flight (vm->vmm_op): the steps find it there, never through a pointer of
 * their own, so that vmm_gone can end it while QMP calls of it are still pending. */
enum step { STEP_GETFD, STEP_MIGRATE, STEP_INCOMING, STEP_POLL };

struct vmm_op {
	vmm_done_cb cb;
	void *arg;
	bool restore;
	int fd;		/* save_state's, lent until getfd has passed it */
	enum step next; /* what follows the QMP call in flight */
	uint64_t started_ms;
	struct event *poll;
};

static void finish(struct vm *vm, bool ok, const char *error)
{
	struct vmm_op *op = vm->vmm_op;
	if (!op)
		return;
	vm->vmm_op = NULL;
	event_free(op->poll);
	vmm_done_cb cb = op->cb;
	void *arg = op->arg;
	free(op);
	cb(vm, ok, error, arg);
}

static json_t *caps(void)
{
	return json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability", "x-ignore-shared", "state", 1);
}

static void on_cont(struct vm *vm, bool ok, const char *error, json_t *ret, void *arg)
{
	(void)ret;
	(void)arg;
	finish(vm, ok, ok ? NULL : error);
}

static void on_query(struct vm *vm, bool ok, const char *error, json_t *ret, void *arg)
{
	struct vmm_op *op = vm->vmm_op;
	const char *status = json_string_value(json_object_get(ret, "status"));
	(void)arg;
	if (!op)
		return;
	if (!ok) {
		finish(vm, false, error);
	} else if (status && strcmp(status, "completed") == 0) {
		if (op->restore) /* a clone starts paused (its source was stopped): run it */
			qmp_command(vm, "cont", on_cont, NULL);
		else
			finish(vm, true, NULL);
	} else if (status && (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0)) {
		const char *why = json_string_value(json_object_get(ret, "error-desc"));
		finish(vm, false, why ? why : status);
	} else if (now_mono_ms() - op->started_ms > MIGRATE_MAX_MS) {
		finish(vm, false, "the device state took too long");
	} else {
		struct timeval tv = {0, POLL_MS * 1000};
		evtimer_add(op->poll, &tv);
	}
}

static void poll_migration(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	qmp_command(arg, "query-migrate", on_query, NULL);
}

static void save_getfd(struct vm *vm);
static void save_migrate(struct vm *vm);
static void restore_incoming(struct vm *vm);

/* A step that only has to succeed before the next (op->next). */
static void on_step(struct vm *vm, bool ok, const char *error, json_t *ret, void *arg)
{
	struct vmm_op *op = vm->vmm_op;
	(void)ret;
	(void)arg;
	if (!op)
		return;
	if (!ok) {
		finish(vm, false, error);
		return;
	}
	switch (op->next) {
	case STEP_GETFD:
		save_getfd(vm);
		break;
	case STEP_MIGRATE:
		save_migrate(vm);
		break;
	case STEP_INCOMING:
		restore_incoming(vm);
		break;
	case STEP_POLL:
		poll_migration(-1, 0, vm);
		break;
	}
}

static void then(struct vm *vm, enum step next, const char *cmd, json_t *args, int fd)
{
	vm->vmm_op->next = next;
	qmp_execute(vm, cmd, args, fd, on_step, NULL);
}

static bool begin(struct vm *vm, bool restore, vmm_done_cb cb, void *arg)
{
	if (vm->vmm_op || !vm->qmp) {
		cb(vm, false, vm->qmp ? "the VMM is busy saving or restoring" : "no QMP connection", arg);
		return false;
	}
	struct vmm_op *op = calloc(1, sizeof(*op));
	if (!op)
		abort();
	*op = (struct vmm_op){.cb = cb, .arg = arg, .restore = restore, .fd = -1, .started_ms = now_mono_ms()};
	op->poll = evtimer_new(vm->sup->base, poll_migration, vm);
	vm->vmm_op = op;
	return true;
}

/* ---- saving ---- */

static void qemu_save_state(struct vm *vm, int fd, vmm_done_cb cb, void *arg)
{
	if (!begin(vm, false, cb, arg))
		return;
	vm->vmm_op->fd = fd;
	then(vm, STEP_GETFD, "migrate-set-capabilities", caps(), -1);
}

static void save_getfd(struct vm *vm)
{
	int fd = vm->vmm_op->fd;
	vm->vmm_op->fd = -1;
	then(vm, STEP_MIGRATE, "getfd", json_pack("{s:s}", "fdname", STATE_FD_NAME), fd);
}

static void save_migrate(struct vm *vm)
{
	then(vm, STEP_POLL, "migrate", json_pack("{s:s}", "uri", "fd:" STATE_FD_NAME), -1);
}

/* ---- restoring ---- */

static void qemu_restore(struct vm *vm, vmm_done_cb cb, void *arg)
{
	if (begin(vm, true, cb, arg))
		then(vm, STEP_INCOMING, "migrate-set-capabilities", caps(), -1);
}

static void restore_incoming(struct vm *vm)
{
	char uri[32];
	snprintf(uri, sizeof(uri), "fd:%d", VMM_FD_STATE);
	then(vm, STEP_POLL, "migrate-incoming", json_pack("{s:s}", "uri", uri), -1);
}

/* ---- the rest ---- */

struct simple {
	vmm_done_cb cb;
	void *arg;
};

static void on_simple(struct vm *vm, bool ok, const char *error, json_t *ret, void *arg)
{
	struct simple s = *(struct simple *)arg;
	(void)ret;
	free(arg);
	s.cb(vm, ok, ok ? NULL : error, s.arg);
}

static void simple(struct vm *vm, const char *cmd, vmm_done_cb cb, void *arg)
{
	struct simple *s = malloc(sizeof(*s));
	if (!s)
		abort();
	*s = (struct simple){cb, arg};
	qmp_command(vm, cmd, on_simple, s);
}

static void qemu_pause(struct vm *vm, vmm_done_cb cb, void *arg)
{
	simple(vm, "stop", cb, arg);
}

static void qemu_resume(struct vm *vm, vmm_done_cb cb, void *arg)
{
	simple(vm, "cont", cb, arg);
}

static void qemu_quit(struct vm *vm)
{
	qmp_command(vm, "quit", NULL, NULL);
}

static void qemu_gone(struct vm *vm)
{
	finish(vm, false, "the VMM is gone");
}

const struct vmm_backend vmm_qemu = {
    .name = "qemu",
    .attach = qmp_open,
    .detach = qmp_close,
    .pause = qemu_pause,
    .resume = qemu_resume,
    .save_state = qemu_save_state,
    .restore = qemu_restore,
    .quit = qemu_quit,
    .gone = qemu_gone,
};
