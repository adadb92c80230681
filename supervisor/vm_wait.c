/* Requests that wait for a VM's container to run, as Podman's do: an exec sent while the VM
 * boots or its container starts runs once the container runs; a detached run is answered
 * then (its client sees the name once `exec` works). Each wait is bounded; a VM that stops
 * first answers them with why. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "supervisor/client.h"
#include "supervisor/vm.h"

#define WAIT_MAX_MS (10 * 60 * 1000) /* a large image's load can take minutes under emulation */

struct vm_waiter {
	struct client *c;
	struct pmsg msg; /* exec: the request, run again; run: the reply, sent */
	bool is_run;
	bool vm_only; /* exec --vm: the agent is enough */
	uint64_t deadline_ms;
	TAILQ_ENTRY(vm_waiter) link;
};

/* A request is kept past its frame: an encoded copy decoded again (no fds: exec has none). */
static int pmsg_clone(struct pmsg *dst, const struct pmsg *src)
{
	static unsigned char buf[PROTO_MAX_FRAME];
	size_t len;
	struct perr e;
	if (src->nfds || pmsg_encode(src, buf, sizeof(buf), &len, &e) != PE_OK)
		return -1;
	return pmsg_decode(dst, buf, len, &e) == PE_OK ? 0 : -1;
}

/* msg kept (copied) until the container runs: an exec request, or a detached run's reply */
static bool add(struct vm *vm, struct client *c, const struct pmsg *msg, bool is_run, bool vm_only)
{
	struct vm_waiter *w = calloc(1, sizeof(*w));
	if (!w || pmsg_clone(&w->msg, msg) < 0) {
		free(w);
		return false;
	}
	w->c = c;
	w->is_run = is_run;
	w->vm_only = vm_only;
	w->deadline_ms = now_mono_ms() + WAIT_MAX_MS;
	client_hold(c);
	TAILQ_INSERT_TAIL(&vm->waiters, w, link);
	return true;
}

bool vm_wait_exec(struct vm *vm, struct client *c, const struct pmsg *req, bool vm_only)
{
	return add(vm, c, req, false, vm_only);
}

bool vm_wait_run(struct vm *vm, struct client *c, const struct pmsg *rep)
{
	return add(vm, c, rep, true, false);
}

static void done(struct vm *vm, struct vm_waiter *w, const char *err)
{
	TAILQ_REMOVE(&vm->waiters, w, link);
	if (!err && !w->is_run) {
		op_vm_exec(w->c, &w->msg); /* the container runs now: as if just asked */
	} else if (err && !w->is_run) {
		client_refuse(w->c, &w->msg, PE_BUSY, "%s", err);
	} else {
		if (err)
			pmsg_set_error(&w->msg, PE_BUSY, "%s", err);
		client_send(w->c, &w->msg);
	}
	client_release(w->c);
	pmsg_free(&w->msg);
	free(w);
}

void vm_wait_ready(struct vm *vm, bool container)
{
	struct vm_waiter *w, *next;
	for (w = TAILQ_FIRST(&vm->waiters); w; w = next) {
		next = TAILQ_NEXT(w, link);
		if (container || w->vm_only)
			done(vm, w, NULL); /* an exec run again may add waiters: they go at the tail */
	}
}

void vm_wait_ended(struct vm *vm)
{
	char why[256];
	struct vm_waiter *w;
	/* a container that ran and ended has done what a detached run waits for */
	bool ran = vm->exit_code >= 0 && vm->exit_code != 125;
	snprintf(why, sizeof(why), "VM '%s' stopped before its container ran (see `fcvm logs %s`)", vm->name, vm->name);
	while ((w = TAILQ_FIRST(&vm->waiters))) {
		if (ran && !w->is_run)
			snprintf(why, sizeof(why), "VM '%s': its container exited (code %d)", vm->name, vm->exit_code);
		done(vm, w, ran && w->is_run ? NULL : why);
	}
}

void vm_wait_check(struct vm *vm)
{
	uint64_t now = now_mono_ms();
	char why[256];
	struct vm_waiter *w, *next;
	snprintf(why, sizeof(why), "VM '%s' is still starting its container after %d s", vm->name, WAIT_MAX_MS / 1000);
	for (w = TAILQ_FIRST(&vm->waiters); w; w = next) {
		next = TAILQ_NEXT(w, link);
		if (now >= w->deadline_ms)
			done(vm, w, why);
	}
}
