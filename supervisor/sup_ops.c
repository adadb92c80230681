/* What clients may ask the supervisor, and who may ask it (the dispatch table at the end). */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/procinfo.h"
#include "common/util.h"
#include "supervisor/client.h"
#include "supervisor/quota.h"
#include "supervisor/snapshot.h"
#include "supervisor/vm.h"

/* ---- version ---- */

static void op_version(struct client *c, const struct pmsg *req)
{
	struct pmsg rep;
	pmsg_init_reply(&rep, req);
	prec_set_str(&rep, &rep.body, "version", FCVM_VERSION);
	prec_set_uint(&rep, &rep.body, "protocol", PROTO_VERSION);
	client_send(c, &rep);
	pmsg_free(&rep);
}

/* ---- ping: the supervisor itself, or forwarded to one helper ---- */

static void op_ping(struct client *c, const struct pmsg *req)
{
	const char *target = prec_str(&req->body, "helper");
	if (target) {
		int id = helper_by_name(target);
		if (id < 0) {
			struct pmsg rep;
			pmsg_init_reply(&rep, req);
			pmsg_set_error(&rep, PE_NOT_FOUND, "no helper named '%s' (netd, stored, uffdd)", target);
			client_send(c, &rep);
			pmsg_free(&rep);
			return;
		}
		relay_to_helper(c, req, (enum helper_id)id, OP_PING);
		return;
	}
	struct pmsg rep;
	pmsg_init_reply(&rep, req);
	if (procinfo_fill(&rep, &rep.body, "supervisor", c->sup->inst->mode_name, c->sup->started_ms) < 0)
		pmsg_set_error(&rep, PE_INTERNAL, "supervisor cannot describe itself");
	client_send(c, &rep);
	pmsg_free(&rep);
}

/* ---- status: the supervisor, each helper (asked in parallel) and the launcher ---- */

struct status_job {
	struct client *c;
	struct pmsg rep;
	struct precord *slot[HELPER__COUNT + 1]; /* helpers, then the launcher */
	int waiting;
	uint64_t snapshots; /* the caller's, by stored's list (UINT64_MAX: not known) */
};

static void fill_down(struct pmsg *m, struct precord *r, const char *name, const char *mode)
{
	prec_set_str(m, r, "name", name);
	prec_set_uint(m, r, "pid", 0);
	prec_set_uint(m, r, "uid", 0);
	prec_set_uint(m, r, "gid", 0);
	prec_set_uint(m, r, "capeff", 0);
	prec_set_uint(m, r, "seccomp", 0);
	prec_set_bool(m, r, "no_new_privs", false);
	prec_set_bool(m, r, "dumpable", false);
	prec_set_str(m, r, "mode", mode);
	prec_set_uint(m, r, "started_ms", 0);
}

static void status_finish(struct status_job *j)
{
	quota_put(j->c->sup, j->c->uid, j->snapshots, &j->rep);
	client_send(j->c, &j->rep);
	client_release(j->c);
	pmsg_free(&j->rep);
	free(j);
}

struct status_part {
	struct status_job *job;
	int slot;
};

static void on_status_part(struct pmsg *prep, void *arg)
{
	struct status_part *p = arg;
	struct status_job *j = p->job;
	struct supervisor *s = j->c->sup;
	struct precord *r = j->slot[p->slot];
	const char *name = p->slot < HELPER__COUNT ? helper_name((enum helper_id)p->slot) : "launcher";
	uint64_t now = now_realtime_ms(), started = 0;
	if (prep->err_code == PE_OK) {
		prec_copy(&j->rep, r, &prep->body);
		prec_uint(&prep->body, "started_ms", &started);
		prec_set_uint(&j->rep, r, "uptime_ms", now > started ? now - started : 0);
		prec_set_str(&j->rep, r, "state", "up");
		if (!s->inst->system_mode && p->slot < HELPER__COUNT) {
			/* a rootless helper is uid 0 in its own user namespace: show who it is on
			 * the host */
			prec_set_uint(&j->rep, r, "uid", s->inst->helper_uid[p->slot]);
			prec_set_uint(&j->rep, r, "gid", s->inst->helper_gid[p->slot]);
		}
	} else {
		fill_down(&j->rep, r, name, s->inst->mode_name);
		const char *state = "down";
		if (p->slot < HELPER__COUNT && s->helpers[p->slot].state == HS_STARTING)
			state = "starting";
		else if (p->slot < HELPER__COUNT && s->helpers[p->slot].state == HS_UP)
			state = "unresponsive"; /* channel open, no answer in time */
		prec_set_str(&j->rep, r, "state", state);
	}
	if (p->slot < HELPER__COUNT)
		prec_set_uint(&j->rep, r, "restarts", s->helpers[p->slot].restarts);
	free(p);
	if (--j->waiting == 0)
		status_finish(j);
}

static void on_status_snapshots(struct pmsg *rep, void *arg)
{
	struct status_job *j = arg;
	j->snapshots = rep->err_code == PE_OK ? snapshot_count_user(rep, j->c->uid) : UINT64_MAX;
	if (--j->waiting == 0)
		status_finish(j);
}

static void op_status(struct client *c, const struct pmsg *req)
{
	struct supervisor *s = c->sup;
	const struct instance *in = s->inst;
	struct status_job *j = calloc(1, sizeof(*j));
	if (!j)
		abort();
	j->c = c;
	client_hold(c);
	pmsg_init_reply(&j->rep, req);
	struct pmsg *m = &j->rep;
	prec_set_str(m, &m->body, "version", FCVM_VERSION);
	prec_set_str(m, &m->body, "mode", in->mode_name);
	prec_set_str(m, &m->body, "state_dir", in->state_dir);
	prec_set_str(m, &m->body, "socket", in->socket_path);
	prec_set_uint(m, &m->body, "owner_uid", in->owner_uid);

	struct precord *self = prec_add_record(m, &m->body, "processes");
	procinfo_fill(m, self, "supervisor", in->mode_name, s->started_ms);
	prec_set_uint(m, self, "uptime_ms", now_realtime_ms() - s->started_ms);
	prec_set_uint(m, self, "restarts", 0);
	prec_set_str(m, self, "state", "up");
	for (const struct vm *vm = TAILQ_FIRST(&s->vms); vm; vm = TAILQ_NEXT(vm, link)) {
		if (vm->pid <= 0 || (c->uid != 0 && c->uid != vm->owner))
			continue; /* one user sees only their own VMs */
		struct precord *r = prec_add_record(m, &m->body, "vmms");
		prec_set_str(m, r, "vm", vm->name);
		prec_set_uint(m, r, "pid", (uint64_t)vm->pid);
		prec_set_uint(m, r, "uid", vm->vmm_uid);
	}
	if (s->vm_limits[0])
		prec_set_str(m, &m->body, "vm_limits", s->vm_limits);
	for (int i = 0; i < HELPER__COUNT; i++)
		j->slot[i] = prec_add_record(m, &m->body, "processes");
	j->slot[HELPER__COUNT] = prec_add_record(m, &m->body, "launcher");

	/* Count first: a reply may arrive synchronously (a helper that is down). */
	j->waiting = HELPER__COUNT + 2;
	struct pmsg list;
	pmsg_init(&list, PK_REQUEST, OP_STORE_SNAP_LIST, 0);
	helper_call(s, HELPER_STORED, &list, on_status_snapshots, j);
	pmsg_free(&list);
	for (int i = 0; i <= HELPER__COUNT; i++) {
		struct status_part *p = calloc(1, sizeof(*p));
		if (!p)
			abort();
		p->job = j;
		p->slot = i;
		struct pmsg ping;
		pmsg_init(&ping, PK_REQUEST, OP_PING, 0);
		if (i < HELPER__COUNT)
			helper_call(s, (enum helper_id)i, &ping, on_status_part, p);
		else
			peer_call(&s->launcher, &ping, on_status_part, p);
		pmsg_free(&ping);
	}
}

/* ---- shutdown ---- */

static void op_shutdown(struct client *c, const struct pmsg *req)
{
	struct pmsg rep;
	pmsg_init_reply(&rep, req);
	client_send(c, &rep);
	pmsg_free(&rep);
	log_info("shutdown requested by uid %u pid %d", (unsigned)c->uid, (int)c->pid);
	supervisor_shutdown(c->sup, "requested by a client");
}

/* Which requests a client may make, and who may make them. Anything not listed (spawn,
 * ready: launcher-only operations) is refused and audited. */
/* ---- disks: relayed to stored (which checks every field again) ---- */

/* Which stored operation serves each client disk operation (same fields). */
static const struct {
	enum proto_op client, stored;
} disk_relays[] = {
    {OP_DISK_CREATE, OP_STORE_CREATE},	      {OP_DISK_CLONE, OP_STORE_CLONE},
    {OP_DISK_REMOVE, OP_STORE_REMOVE},	      {OP_DISK_LIST, OP_STORE_LIST},
    {OP_IMAGE_IMPORT, OP_STORE_IMAGE_IMPORT}, {OP_IMAGE_LIST, OP_STORE_IMAGE_LIST},
    {OP_IMAGE_REMOVE, OP_STORE_IMAGE_REMOVE},
};

static void op_disk(struct client *c, const struct pmsg *req)
{
	for (size_t i = 0; i < ARRAY_LEN(disk_relays); i++)
		if (disk_relays[i].client == req->op->id) {
			relay_to_helper(c, req, HELPER_STORED, disk_relays[i].stored);
			return;
		}
}

static const struct control_op control_ops[] = {
    {OP_VERSION, WHO_ANYONE, op_version},
    {OP_PING, WHO_CLIENT, op_ping},
    {OP_STATUS, WHO_CLIENT, op_status},
    {OP_SHUTDOWN, WHO_OWNER, op_shutdown},
    /* raw disks: the instance's owner (VM operations will manage users' disks) */
    {OP_DISK_CREATE, WHO_OWNER, op_disk},
    {OP_DISK_CLONE, WHO_OWNER, op_disk},
    {OP_DISK_REMOVE, WHO_OWNER, op_disk},
    {OP_DISK_LIST, WHO_OWNER, op_disk},
    /* base images: the instance's owner (they are shared by every VM it runs) */
    {OP_IMAGE_IMPORT, WHO_OWNER, op_disk},
    {OP_IMAGE_LIST, WHO_CLIENT, op_disk},
    {OP_IMAGE_REMOVE, WHO_OWNER, op_disk},
    /* VMs: any client; each VM is its owner's (and root's) alone (supervisor/sup_vm_ops.c) */
    {OP_VM_RUN, WHO_CLIENT, op_vm_run},
    {OP_VM_EXEC, WHO_CLIENT, op_vm_exec},
    {OP_VM_LIST, WHO_CLIENT, op_vm_list},
    {OP_VM_STOP, WHO_CLIENT, op_vm_stop},
    {OP_VM_REMOVE, WHO_CLIENT, op_vm_remove},
    {OP_VM_LOGS, WHO_CLIENT, op_vm_logs},
    /* snapshots: any client; each its owner's (and root's) alone (supervisor/snapshot.c) */
    {OP_SNAPSHOT_CREATE, WHO_CLIENT, op_snapshot_create},
    {OP_SNAPSHOT_RUN, WHO_CLIENT, op_snapshot_run},
    {OP_SNAPSHOT_LIST, WHO_CLIENT, op_snapshot_list},
    {OP_SNAPSHOT_REMOVE, WHO_CLIENT, op_snapshot_remove},
    {OP_SNAPSHOT_PRUNE, WHO_CLIENT, op_snapshot_prune},
};

const struct control_op *control_op_find(enum proto_op op)
{
	for (size_t i = 0; i < ARRAY_LEN(control_ops); i++)
		if (control_ops[i].op == op)
			return &control_ops[i];
	return NULL;
}
