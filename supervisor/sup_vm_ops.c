/* Client operations on VMs. Every VM belongs to the user who started it: another user (not
 * root) is told there is no such VM, whatever exists. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "supervisor/client.h"
#include "supervisor/vm.h"

static void reply_error(struct client *c, const struct pmsg *req, int code, const char *msg)
{
	struct pmsg rep;
	pmsg_init_reply(&rep, req);
	pmsg_set_error(&rep, code, "%s", msg);
	client_send(c, &rep);
	pmsg_free(&rep);
}

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
	struct vm *vm = name ? vm_find(c->sup, name) : NULL;
	if (!vm || !may_see(c, vm)) {
		char msg[320];
		snprintf(msg, sizeof(msg), "no VM named '%s' (see `fcvm ls`)", name ? name : "");
		reply_error(c, req, PE_NOT_FOUND, msg);
		return NULL;
	}
	return vm;
}

void op_vm_run(struct client *c, const struct pmsg *req)
{
	if (c->sup->stopping) {
		reply_error(c, req, PE_UNAVAILABLE, "the supervisor is stopping");
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
		char msg[320];
		snprintf(msg, sizeof(msg), "VM '%s' is %s: stop it first (`fcvm stop %s`)", vm->name,
			 vm_status_name(vm->status), vm->name);
		reply_error(c, req, PE_BUSY, msg);
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
	if (vm->status != VM_RUNNING) {
		char msg[320];
		snprintf(msg, sizeof(msg), "VM '%s' is %s, not running", vm->name, vm_status_name(vm->status));
		reply_error(c, req, PE_BUSY, msg);
		return;
	}
	struct exec_job *j = calloc(1, sizeof(*j));
	struct vm_session *se = j ? vm_session_new(vm, c, false) : NULL;
	if (!se) {
		free(j);
		reply_error(c, req, PE_INTERNAL, "out of memory");
		return;
	}
	bool b;
	j->c = c;
	j->sid = se->sid;
	pmsg_init_reply(&j->rep, req);
	client_hold(c);
	struct pmsg ps;
	pmsg_init(&ps, PK_REQUEST, OP_PROC_START, 0);
	prec_set_uint(&ps, &ps.body, "session", se->sid);
	prec_set_str(&ps, &ps.body, "kind", prec_bool(&req->body, "vm", &b) && b ? "vm" : "exec");
	static const char *const lists[] = {"argv", "env"};
	for (size_t i = 0; i < 2; i++) {
		const struct pval *v = prec_get(&req->body, lists[i]);
		for (uint32_t k = 0; v && k < v->list.n; k++)
			prec_add_str(&ps, &ps.body, lists[i], v->list.v[k]);
	}
	uint64_t u;
	if (prec_bool(&req->body, "tty", &b))
		prec_set_bool(&ps, &ps.body, "tty", b);
	if (prec_bool(&req->body, "stdin", &b))
		prec_set_bool(&ps, &ps.body, "stdin", b);
	if (prec_uint(&req->body, "rows", &u))
		prec_set_uint(&ps, &ps.body, "rows", u);
	if (prec_uint(&req->body, "cols", &u))
		prec_set_uint(&ps, &ps.body, "cols", u);
	agent_call(vm, &ps, on_exec_started, j);
	pmsg_free(&ps);
}

/* ---- logs: the container's output as recorded, then (with follow) as it comes ---- */

static void send_logged(struct client *c, uint32_t sid, struct vm *vm, uint64_t *offset)
{
	unsigned char hdr[5];
	unsigned char *buf = malloc(4096);
	off_t pos = 0;
	if (!buf)
		return;
	while (pread(vm->log_fd, hdr, sizeof(hdr), pos) == (ssize_t)sizeof(hdr)) {
		uint32_t be, n;
		memcpy(&be, hdr + 1, 4);
		n = ntohl(be);
		if (n == 0 || n > 4096 || pread(vm->log_fd, buf, n, pos + 5) != (ssize_t)n)
			break;
		pos += 5 + (off_t)n;
		struct pmsg ev;
		pmsg_init(&ev, PK_EVENT, OP_PROC_OUTPUT, 0);
		prec_set_uint(&ev, &ev.body, "session", sid);
		prec_set_uint(&ev, &ev.body, "stream", hdr[0] == 2 ? 2 : 1);
		prec_set_uint(&ev, &ev.body, "offset", *offset);
		prec_set_bin(&ev, &ev.body, "data", buf, n);
		client_send(c, &ev);
		pmsg_free(&ev);
		*offset += n;
	}
	free(buf);
}

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
	uint64_t offset = 0;
	if (vm->log_fd >= 0)
		send_logged(c, sid, vm, &offset);
	if (follow && (vm->status == VM_BOOTING || vm->status == VM_RUNNING || vm->status == VM_STOPPING)) {
		struct vm_follower *f = calloc(1, sizeof(*f));
		if (f) {
			f->client = c;
			f->sid = sid;
			TAILQ_INSERT_TAIL(&vm->followers, f, link);
			return;
		}
	}
	struct pmsg ev;
	pmsg_init(&ev, PK_EVENT, OP_PROC_EXIT, 0);
	prec_set_uint(&ev, &ev.body, "session", sid);
	prec_set_uint(&ev, &ev.body, "code", 0);
	prec_set_uint(&ev, &ev.body, "offset", offset);
	client_send(c, &ev);
	pmsg_free(&ev);
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
		log_audit("uid %u pid %d: '%s' for session %u, which is not its own", (unsigned)c->uid, (int)c->pid,
			  ev->op->name, (unsigned)sid);
		return true;
	}
	agent_send_event(vm, ev); /* same op, same fields, same session number */
	return true;
}
