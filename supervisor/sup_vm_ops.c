/* Client operations on VMs. Every VM belongs to the user who started it: another user (not
 * root) is told there is no such VM, whatever exists. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "supervisor/client.h"
#include "supervisor/vm.h"

#define EXEC_START_TIMEOUT_MS 60000 /* an exec's proc_start (podman exec's, where the agent's own cannot) */

static void reply_ok(struct client *c, const struct pmsg *req)
{
	struct pmsg rep;
	pmsg_init_reply(&rep, req);
	client_send(c, &rep);
	pmsg_free(&rep);
}

static bool may_see(const struct client *c, const struct vm *vm)
{
	return c->uid == 0 || c->uid == vm->owner;
}

/* The VM req names, if this client may see it; otherwise an error reply and NULL. */
static struct vm *named_vm(struct client *c, const struct pmsg *req)
{
	const char *name = prec_str(&req->body, "name");
	char err[200] = "";
	struct vm *vm = name ? vm_find_for(c->sup, c->uid, name, err, sizeof(err)) : NULL;
	if (!vm || !may_see(c, vm)) {
		if (err[0])
			client_refuse(c, req, PE_INVALID, "%s", err);
		else
			client_refuse(c, req, PE_NOT_FOUND, "no VM named '%s' (see `fcvm ls`)", name ? name : "");
		return NULL;
	}
	return vm;
}

void op_vm_run(struct client *c, const struct pmsg *req)
{
	if (c->sup->stopping) {
		client_refuse(c, req, PE_UNAVAILABLE, "the supervisor is stopping");
		return;
	}
	vm_run(c, req);
}

void op_vm_stop(struct client *c, const struct pmsg *req)
{
	struct vm *vm = named_vm(c, req);
	if (!vm)
		return;
	vm_stop(vm, "asked by a client");
	reply_ok(c, req);
}

void op_vm_remove(struct client *c, const struct pmsg *req)
{
	struct vm *vm = named_vm(c, req);
	if (!vm)
		return;
	if (vm->status != VM_STOPPED && vm->status != VM_LOST) {
		client_refuse(c, req, PE_BUSY, "VM '%s' is %s: stop it first (`fcvm stop %s`)", vm->name,
			      vm_status_name(vm->status), vm->name);
		return;
	}
	vm_remove_for(vm, c, req);
}

void op_vm_list(struct client *c, const struct pmsg *req)
{
	struct pmsg rep;
	pmsg_init_reply(&rep, req);
	for (const struct vm *vm = TAILQ_FIRST(&c->sup->vms); vm; vm = TAILQ_NEXT(vm, link)) {
		if (!may_see(c, vm) || vm->removing)
			continue;
		struct precord *r = prec_add_record(&rep, &rep.body, "vms");
		if (!r)
			break;
		prec_set_str(&rep, r, "name", vm->name);
		prec_set_str(&rep, r, "id", vm->id);
		prec_set_str(&rep, r, "status", vm_status_name(vm->status));
		prec_set_str(&rep, r, "health", vm->health);
		prec_set_str(&rep, r, "image", vm->image);
		prec_set_uint(&rep, r, "owner", vm->owner);
		prec_set_uint(&rep, r, "created_ms", vm->created_ms);
		prec_set_uint(&rep, r, "cpu", vm->qc.cpus);
		prec_set_uint(&rep, r, "mem", vm->qc.mem_mib);
		prec_set_str(&rep, r, "accel", accel_name(vm->qc.accel));
		prec_set_str(&rep, r, "network", vm->network);
		if (vm->pid > 0)
			prec_set_uint(&rep, r, "pid", (uint64_t)vm->pid);
		if (vm->exit_code >= 0)
			prec_set_uint(&rep, r, "exit_code", (uint64_t)vm->exit_code);
		if (vm->boot_ms)
			prec_set_uint(&rep, r, "boot_ms", vm->boot_ms);
		if (vm->limits[0])
			prec_set_str(&rep, r, "limits", vm->limits);
		vm_net_list(vm, &rep, r);
	}
	client_send(c, &rep);
	pmsg_free(&rep);
}

/* ---- exec ---- */

struct exec_job {
	struct client *c;
	struct pmsg rep;
	uint32_t sid;
};

static void on_exec_started(struct vm *vm, struct pmsg *rep, void *arg)
{
	struct exec_job *j = arg;
	struct vm_session *se = vm_session_find(vm, j->sid);
	if (rep->err_code != PE_OK) {
		pmsg_set_error(&j->rep, rep->err_code, "%s", rep->err_msg ? rep->err_msg : "exec failed");
		if (se) {
			TAILQ_REMOVE(&vm->sessions, se, link);
			free(se);
		}
	} else {
		prec_set_uint(&j->rep, &j->rep.body, "session", j->sid);
	}
	client_send(j->c, &j->rep);
	client_release(j->c);
	pmsg_free(&j->rep);
	free(j);
}

void op_vm_exec(struct client *c, const struct pmsg *req)
{
	struct vm *vm = named_vm(c, req);
	if (!vm)
		return;
	bool b, in_vm = prec_bool(&req->body, "vm", &b) && b;
	/* booting, or its container starting: as with Podman, the exec waits for it to run */
	bool starting = vm->status == VM_CREATING || vm->status == VM_BOOTING ||
			(vm->status == VM_RUNNING && !in_vm && !vm->container_ran && vm->exit_code < 0);
	if (starting) {
		if (!vm_wait_exec(vm, c, req, in_vm))
			client_refuse(c, req, PE_INTERNAL, "out of memory");
		return;
	}
	if (vm->status != VM_RUNNING) {
		client_refuse(c, req, PE_BUSY, "VM '%s' is %s, not running", vm->name, vm_status_name(vm->status));
		return;
	}
	struct exec_job *j = calloc(1, sizeof(*j));
	struct vm_session *se = j ? vm_session_new(vm, c, false) : NULL;
	if (!se) {
		free(j);
		client_refuse(c, req, PE_INTERNAL, "out of memory");
		return;
	}
	j->c = c;
	j->sid = se->sid;
	pmsg_init_reply(&j->rep, req);
	client_hold(c);
	struct pmsg ps;
	vm_proc_start(&ps, se->sid, in_vm ? "vm" : "exec", &req->body);
	agent_call_within(vm, &ps, EXEC_START_TIMEOUT_MS, on_exec_started, j);
	pmsg_free(&ps);
}

/* ---- logs: the container's output as recorded, then (with follow) as it comes ---- */

void op_vm_logs(struct client *c, const struct pmsg *req)
{
	struct vm *vm = named_vm(c, req);
	if (!vm)
		return;
	bool follow = false;
	prec_bool(&req->body, "follow", &follow);
	uint32_t sid = vm->next_sid++;
	struct pmsg rep;
	pmsg_init_reply(&rep, req);
	prec_set_uint(&rep, &rep.body, "session", sid);
	client_send(c, &rep);
	pmsg_free(&rep);
	vm_logs_start(vm, c, sid, follow);
}

/* ---- events from a client for one of its sessions ---- */

bool vm_client_event(struct client *c, const struct pmsg *ev)
{
	if (ev->op->id != OP_PROC_INPUT && ev->op->id != OP_PROC_RESIZE && ev->op->id != OP_PROC_SIGNAL)
		return false;
	uint64_t sid;
	struct vm *vm = NULL;
	if (!prec_uint(&ev->body, "session", &sid))
		return true;
	struct vm_session *se = vm_session_of_client(c->sup, c, (uint32_t)sid, &vm);
	if (!se) {
		log_audit_limited(c->uid, "uid %u pid %d: '%s' for session %u, which is not its own", (unsigned)c->uid,
				  (int)c->pid, ev->op->name, (unsigned)sid);
		return true;
	}
	agent_send_event(vm, ev); /* same op, same fields, same session number */
	return true;
}
