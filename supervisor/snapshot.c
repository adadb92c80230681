/* Taking a snapshot of a running VM, and the client operations on snapshots.
 *
 * stored makes .tmp/TAG.<random>/ and hands out its state file. The pause: the VMM pauses
 * and saves its device state into that file (vmm.h; the RAM is a shared memfd, not in the
 * state); stored copies the RAM memfd, the disk (flushed: QEMU inactivates its images when
 * the save completes) and the image into the snapshot and publishes it; the VMM resumes. A
 * failure anywhere aborts the snapshot and lets the VM run on. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/assets.h"
#include "common/log.h"
#include "common/util.h"
#include "supervisor/client.h"
#include "supervisor/quota.h"
#include "supervisor/snapshot.h"
#include "supervisor/vm.h"
#include "supervisor/vmm.h"

struct snapshot_job {
	struct supervisor *s;
	struct client *c; /* snapshot create's; NULL: the supervisor's own (done is called) */
	snapshot_done_cb done;
	void *done_arg;
	char kind[8];
	struct pmsg rep;
	struct vm *vm; /* NULL once the VM has gone */
	char tag[65];  /* stored's name (snapshot_names.c) */
	uid_t viewer;  /* whom the replies name it to */
	int state_fd;
	bool begun, stopped;
	uint64_t t_stop, t_state;
};

/* "kernel-HASH.vmlinux" -> "HASH" */
static void content_name(const char *path, char *out, size_t n)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	const char *dash = strchr(b, '-'), *dot = dash ? strchr(dash, '.') : NULL;
	if (dash && dot)
		snprintf(out, n, "%.*s", (int)(dot - dash - 1), dash + 1);
	else
		snprintf(out, n, "%.32s", b);
}

int snapshot_assets_id(struct supervisor *s, char *buf, size_t n)
{
	struct assets a;
	char err[256], k[40], r[40];
	if (assets_load(s->inst->assets_dir, &a, err, sizeof(err)) < 0)
		return -1;
	content_name(a.kernel, k, sizeof(k));
	content_name(a.rootfs, r, sizeof(r));
	return snprintf(buf, n, "%s-%s", k, r) < (int)n ? 0 : -1;
}

void snapshot_stored_done(struct pmsg *rep, void *arg)
{
	(void)arg;
	if (rep->err_code != PE_OK && rep->err_code != PE_NOT_FOUND)
		log_err("snapshot: stored: %s", rep->err_msg ? rep->err_msg : "?");
}

/* The end, either way: the client is answered, or the supervisor's caller told. */
static void job_finish(struct snapshot_job *j)
{
	if (j->vm)
		j->vm->snapshot = NULL;
	close_fdp(&j->state_fd);
	if (j->c) {
		client_send(j->c, &j->rep);
		client_release(j->c);
	} else if (j->done) {
		j->done(j->vm, &j->rep, j->done_arg);
	}
	pmsg_free(&j->rep);
	free(j);
}

static void on_resumed_after_failure(struct vm *vm, bool ok, const char *error, void *arg)
{
	(void)arg;
	if (!ok)
		log_err("%s: not resumed after a failed snapshot: %s", vm->name, error ? error : "?");
}

/* The snapshot failed: stored discards what it built, the VM runs on, the client is told. */
static void job_fail(struct snapshot_job *j, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void job_fail(struct snapshot_job *j, int code, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_err("snapshot '%s': %s", j->tag, msg);
	if (j->begun) {
		struct pmsg req;
		pmsg_init(&req, PK_REQUEST, OP_STORE_SNAP_ABORT, 0);
		prec_set_str(&req, &req.body, "tag", j->tag);
		helper_call(j->s, HELPER_STORED, &req, snapshot_stored_done, NULL);
		pmsg_free(&req);
	}
	if (j->vm && j->stopped)
		vmm_of(j->vm)->resume(j->vm, on_resumed_after_failure, NULL);
	pmsg_set_error(&j->rep, code, "%s", msg);
	job_finish(j);
}

/* The VM goes away while a snapshot of it is being taken: the step in flight (the VMM's,
 * failed as it goes, or stored's) ends the job. */
void snapshot_vm_gone(struct vm *vm)
{
	struct snapshot_job *j = vm->snapshot;
	if (!j)
		return;
	vm->snapshot = NULL;
	j->vm = NULL;
}

static void on_resumed(struct vm *vm, bool ok, const char *error, void *arg)
{
	struct snapshot_job *j = arg;
	uint64_t now = now_mono_ms();
	if (!ok) /* the snapshot is made; the VM could not be resumed */
		log_err("%s: not resumed after snapshot '%s': %s", vm->name, j->tag, error ? error : "?");
	prec_set_uint(&j->rep, &j->rep.body, "pause_ms", now - j->t_stop);
	prec_set_uint(&j->rep, &j->rep.body, "state_ms", j->t_state - j->t_stop);
	prec_set_uint(&j->rep, &j->rep.body, "copy_ms", now - j->t_state);
	log_info("%s: snapshot '%s' taken, paused %llu ms (device state %llu ms)", vm->name, j->tag,
		 (unsigned long long)(now - j->t_stop), (unsigned long long)(j->t_state - j->t_stop));
	job_finish(j);
}

static void on_commit(struct pmsg *rep, void *arg)
{
	struct snapshot_job *j = arg;
	j->begun = false; /* published, or discarded by stored */
	if (rep->err_code != PE_OK) {
		job_fail(j, rep->err_code, "stored could not keep it: %s", rep->err_msg ? rep->err_msg : "?");
		return;
	}
	if (!j->vm) {
		job_fail(j, PE_UNAVAILABLE, "the VM went away during the snapshot");
		return;
	}
	static const char *const sizes[] = {"mem_bytes", "state_bytes", "disk_bytes", "size"};
	prec_set_str(&j->rep, &j->rep.body, "tag", snapshot_shown_tag(j->viewer, j->tag));
	prec_copy_fields(&j->rep, &j->rep.body, &rep->body, sizes, ARRAY_LEN(sizes));
	vmm_of(j->vm)->resume(j->vm, on_resumed, j);
}

/* The device state is written: stored copies the RAM, the disk and the image. */
static void on_saved(struct vm *vm, bool ok, const char *error, void *arg)
{
	struct snapshot_job *j = arg;
	struct pmsg req;
	char disk[80], assets[80];
	close_fdp(&j->state_fd);
	if (!ok || !j->vm) {
		job_fail(j, PE_INTERNAL, "QEMU could not save the device state: %s",
			 error ? error : "the VM went away");
		return;
	}
	j->t_state = now_mono_ms();
	if (snapshot_assets_id(j->s, assets, sizeof(assets)) < 0) {
		job_fail(j, PE_NOT_FOUND, "the guest assets cannot be read");
		return;
	}
	snprintf(disk, sizeof(disk), "vm-%s", vm->id);
	pmsg_init(&req, PK_REQUEST, OP_STORE_SNAP_COMMIT, 0);
	prec_set_str(&req, &req.body, "tag", j->tag);
	prec_set_str(&req, &req.body, "disk", disk);
	prec_set_str(&req, &req.body, "vm", vm->name);
	prec_set_str(&req, &req.body, "image", vm->image);
	prec_set_uint(&req, &req.body, "owner", vm->owner);
	prec_set_uint(&req, &req.body, "created_ms", now_realtime_ms());
	prec_set_uint(&req, &req.body, "cpu", vm->qc.cpus);
	prec_set_uint(&req, &req.body, "mem", vm->qc.mem_mib);
	prec_set_str(&req, &req.body, "accel", accel_name(vm->qc.accel));
	prec_set_str(&req, &req.body, "assets", assets);
	prec_set_str(&req, &req.body, "network", vm->network);
	prec_set_str(&req, &req.body, "kind", j->kind);
	int ram = fcntl(vm->ram_fd, F_DUPFD_CLOEXEC, 3), image = fcntl(vm->image_fd, F_DUPFD_CLOEXEC, 3);
	if (ram < 0 || image < 0) {
		close_fdp(&ram);
		close_fdp(&image);
		pmsg_free(&req);
		job_fail(j, PE_INTERNAL, "cannot pass the VM's RAM: %s", strerror(errno));
		return;
	}
	pmsg_add_fd(&req, ram);
	pmsg_add_fd(&req, image);
	helper_call(j->s, HELPER_STORED, &req, on_commit, j);
	pmsg_free(&req);
}

static void on_paused(struct vm *vm, bool ok, const char *error, void *arg)
{
	struct snapshot_job *j = arg;
	if (!ok || !j->vm) {
		job_fail(j, PE_INTERNAL, "the VM could not be paused: %s", error ? error : "it went away");
		return;
	}
	j->stopped = true;
	j->t_stop = now_mono_ms();
	vmm_of(vm)->save_state(vm, j->state_fd, on_saved, j);
}

static void on_begun(struct pmsg *rep, void *arg)
{
	struct snapshot_job *j = arg;
	if (rep->err_code == PE_EXISTS) {
		const char *shown = snapshot_shown_tag(j->viewer, j->tag);
		job_fail(j, PE_EXISTS, "a snapshot tagged '%s' exists already (remove it with `fcvm snapshot rm %s`)",
			 shown, shown);
		return;
	}
	if (rep->err_code != PE_OK) {
		job_fail(j, rep->err_code, "stored: %s", rep->err_msg ? rep->err_msg : "?");
		return;
	}
	j->begun = true;
	j->state_fd = pmsg_take_fd(rep, 0);
	if (!j->vm) {
		job_fail(j, PE_UNAVAILABLE, "the VM went away during the snapshot");
		return;
	}
	vmm_of(j->vm)->pause(j->vm, on_paused, j);
}

static bool may_see(const struct client *c, uid_t owner)
{
	return c->uid == 0 || c->uid == owner;
}

/* Why VM cannot be snapshotted now, into why (0: it can), as a PE_ code. */
static int cannot_snapshot(const struct vm *vm, bool booting_ok, char *why, size_t n)
{
	if ((vm->status != VM_RUNNING && !(booting_ok && vm->status == VM_BOOTING)) || !vm->qmp) {
		snprintf(why, n, "VM '%s' is %s: only a running VM can be snapshotted", vm->name,
			 vm_status_name(vm->status));
		return PE_BUSY;
	}
	if (vm->qc.restore && vm->cache.from) {
		snprintf(why, n,
			 "VM '%s' was started from the startup cache, as a clone of its entry: it cannot be "
			 "snapshotted (start it with --no-snapshot to take snapshots of it)",
			 vm->name);
		return PE_INVALID;
	}
	if (vm->qc.restore) {
		snprintf(why, n, "VM '%s' is a clone of '%s': snapshot the VM it was cloned from", vm->name,
			 snapshot_shown_tag(vm->owner, vm->clone_of));
		return PE_INVALID;
	}
	if (vm->ram_fd < 0 || vm->image_fd < 0) {
		snprintf(why, n,
			 "VM '%s' was re-attached by a restarted supervisor, which has no hold on its memory: it "
			 "cannot be snapshotted (start it again)",
			 vm->name);
		return PE_INVALID;
	}
	if (vm->snapshot) {
		snprintf(why, n, "a snapshot of VM '%s' is being taken", vm->name);
		return PE_BUSY;
	}
	return 0;
}

static struct snapshot_job *job_start(struct vm *vm, const char *tag, const char *kind)
{
	struct snapshot_job *j = calloc(1, sizeof(*j));
	if (!j)
		abort();
	j->s = vm->sup;
	j->vm = vm;
	j->state_fd = -1;
	snprintf(j->tag, sizeof(j->tag), "%s", tag);
	j->viewer = vm->owner;
	snprintf(j->kind, sizeof(j->kind), "%s", kind);
	vm->snapshot = j;
	return j;
}

static void job_begin(struct snapshot_job *j)
{
	struct pmsg sreq;
	pmsg_init(&sreq, PK_REQUEST, OP_STORE_SNAP_BEGIN, 0);
	prec_set_str(&sreq, &sreq.body, "tag", j->tag);
	helper_call(j->s, HELPER_STORED, &sreq, on_begun, j);
	pmsg_free(&sreq);
}

int snapshot_take(struct vm *vm, const char *tag, const char *kind, snapshot_done_cb done, void *arg)
{
	char why[300];
	int code = cannot_snapshot(vm, true, why, sizeof(why)); /* the cache's boot entry: agent up */
	if (code)
		return code;
	struct snapshot_job *j = job_start(vm, tag, kind);
	j->done = done;
	j->done_arg = arg;
	pmsg_init(&j->rep, PK_REPLY, OP_SNAPSHOT_CREATE, 0);
	job_begin(j);
	return PE_OK;
}

static void on_quota_list(struct pmsg *rep, void *arg)
{
	struct snapshot_job *j = arg;
	char why[300];
	if (rep->err_code != PE_OK) {
		job_fail(j, rep->err_code, "stored: %s", rep->err_msg ? rep->err_msg : "?");
		return;
	}
	if (!j->vm) {
		job_fail(j, PE_UNAVAILABLE, "the VM went away during the snapshot");
		return;
	}
	int code = quota_check_snapshot(j->s, j->vm->owner, snapshot_count_user(rep, j->vm->owner), why, sizeof(why));
	if (code) {
		job_fail(j, code, "%s", why);
		return;
	}
	job_begin(j);
}

void op_snapshot_create(struct client *c, const struct pmsg *req)
{
	const char *name = prec_str(&req->body, "vm"), *tag = prec_str(&req->body, "tag");
	char err[200] = "";
	struct vm *vm = vm_find_for(c->sup, c->uid, name, err, sizeof(err));
	if (!vm || !may_see(c, vm->owner) || vm->removing) {
		if (err[0])
			client_refuse(c, req, PE_INVALID, "%s", err);
		else
			client_refuse(c, req, PE_NOT_FOUND, "no VM named '%s' (see `fcvm ls`)", name);
		return;
	}
	if (strncmp(tag, CACHE_TAG_PREFIX, strlen(CACHE_TAG_PREFIX)) == 0) {
		client_refuse(c, req, PE_INVALID, "tags beginning with '%s' are the startup cache's: choose another",
			      CACHE_TAG_PREFIX);
		return;
	}
	char why[300], store_tag[SNAP_STORE_TAG_MAX + 1];
	enum vmm_kind kind;
	int vrc = vmm_choose(c->sup, prec_str(&req->body, "vmm"), &kind, why, sizeof(why));
	if (vrc == PE_OK && prec_str(&req->body, "vmm") && kind != VMM_KIND_QEMU) { /* VMs run on QEMU alone yet */
		vrc = PE_INVALID;
		snprintf(
		    why, sizeof(why),
		    "VM '%s' runs on QEMU, and a snapshot is loaded only by the VMM that took it: --vmm qemu (or auto)",
		    vm->name);
	}
	if (vrc) {
		client_refuse(c, req, vrc, "%s", why);
		return;
	}
	if (snapshot_store_tag(c->uid, vm->owner, tag, store_tag, sizeof(store_tag), why, sizeof(why)) < 0) {
		client_refuse(c, req, PE_INVALID, "%s", why);
		return;
	}
	int code = cannot_snapshot(vm, false, why, sizeof(why));
	if (code) {
		client_refuse(c, req, code, "%s", why);
		return;
	}
	struct snapshot_job *j = job_start(vm, store_tag, "user");
	j->c = c;
	j->viewer = c->uid;
	client_hold(c);
	pmsg_init_reply(&j->rep, req);
	/* the owner's snapshots, counted by stored, against their quota (the VM is marked as
	 * being snapshotted meanwhile: a second request waits for none of this) */
	struct pmsg sreq;
	pmsg_init(&sreq, PK_REQUEST, OP_STORE_SNAP_LIST, 0);
	helper_call(c->sup, HELPER_STORED, &sreq, on_quota_list, j);
	pmsg_free(&sreq);
}

uint64_t snapshot_count_user(const struct pmsg *list_rep, uid_t owner)
{
	const struct pval *v = prec_get(&list_rep->body, "snapshots");
	uint64_t n = 0, o;
	for (uint32_t i = 0; v && i < v->recs.n; i++) {
		const char *kind = prec_str(&v->recs.v[i], "kind");
		n += prec_uint(&v->recs.v[i], "owner", &o) && o == owner && (!kind || strcmp(kind, "user") == 0);
	}
	return n;
}

void op_snapshot_run(struct client *c, const struct pmsg *req)
{
	if (c->sup->stopping) {
		client_refuse(c, req, PE_UNAVAILABLE, "the supervisor is stopping");
		return;
	}
	vm_run(c, req); /* the clone branch of a VM's start (vm_clone.c) */
}

unsigned snapshot_clones(struct supervisor *s, const char *tag)
{
	unsigned n = 0;
	for (const struct vm *vm = TAILQ_FIRST(&s->vms); vm; vm = TAILQ_NEXT(vm, link))
		n += strcmp(vm->clone_of, tag) == 0 && !vm->removing;
	return n;
}

struct list_job {
	struct client *c;
	struct pmsg rep;
};

static void on_list(struct pmsg *rep, void *arg)
{
	struct list_job *l = arg;
	const struct pval *v = prec_get(&rep->body, "snapshots");
	if (rep->err_code != PE_OK)
		pmsg_set_error(&l->rep, rep->err_code, "%s", rep->err_msg ? rep->err_msg : "stored failed");
	for (uint32_t i = 0; rep->err_code == PE_OK && v && i < v->recs.n; i++) {
		const struct precord *in = &v->recs.v[i];
		uint64_t owner = 0;
		prec_uint(in, "owner", &owner);
		if (!may_see(l->c, (uid_t)owner))
			continue;
		struct precord *out = prec_add_record(&l->rep, &l->rep.body, "snapshots");
		if (!out)
			break;
		prec_copy(&l->rep, out, in);
		prec_set_str(&l->rep, out, "tag", snapshot_shown_tag(l->c->uid, prec_str(in, "tag")));
		prec_set_uint(&l->rep, out, "clones", snapshot_clones(l->c->sup, prec_str(in, "tag")));
	}
	client_send(l->c, &l->rep);
	client_release(l->c);
	pmsg_free(&l->rep);
	free(l);
}

void op_snapshot_list(struct client *c, const struct pmsg *req)
{
	struct list_job *l = calloc(1, sizeof(*l));
	if (!l)
		abort();
	l->c = c;
	client_hold(c);
	pmsg_init_reply(&l->rep, req);
	struct pmsg sreq;
	pmsg_init(&sreq, PK_REQUEST, OP_STORE_SNAP_LIST, 0);
	helper_call(c->sup, HELPER_STORED, &sreq, on_list, l);
	pmsg_free(&sreq);
}

/* Removal: refused while a clone of it exists (running or not: its disk came from it, and
 * a stopped clone may be listed); the owner's or root's. stored's meta says whose it is. */
struct rm_job {
	struct client *c;
	struct pmsg rep;
	char tag[65];	/* stored's name */
	char shown[65]; /* the caller's */
};

static void rm_done(struct rm_job *r)
{
	client_send(r->c, &r->rep);
	client_release(r->c);
	pmsg_free(&r->rep);
	free(r);
}

static void on_removed(struct pmsg *rep, void *arg)
{
	struct rm_job *r = arg;
	if (rep->err_code != PE_OK)
		pmsg_set_error(&r->rep, rep->err_code, "snapshot '%s' not removed: %s", r->shown,
			       rep->err_msg ? rep->err_msg : "?");
	rm_done(r);
}

static void on_rm_list(struct pmsg *rep, void *arg)
{
	struct rm_job *r = arg;
	const struct pval *v = prec_get(&rep->body, "snapshots");
	const struct precord *found = NULL;
	for (uint32_t i = 0; rep->err_code == PE_OK && v && i < v->recs.n && !found; i++)
		if (strcmp(prec_str(&v->recs.v[i], "tag"), r->tag) == 0)
			found = &v->recs.v[i];
	uint64_t owner = 0;
	if (found)
		prec_uint(found, "owner", &owner);
	unsigned n = snapshot_clones(r->c->sup, r->tag);
	if (rep->err_code != PE_OK) {
		pmsg_set_error(&r->rep, rep->err_code, "%s", rep->err_msg ? rep->err_msg : "stored failed");
	} else if (!found || !may_see(r->c, (uid_t)owner)) {
		pmsg_set_error(&r->rep, PE_NOT_FOUND, "no snapshot tagged '%s' (see `fcvm snapshot ls`)", r->shown);
	} else if (n) {
		pmsg_set_error(&r->rep, PE_BUSY, "snapshot '%s' has %u clone%s: remove %s first (`fcvm ls`)", r->shown,
			       n, n == 1 ? "" : "s", n == 1 ? "it" : "them");
	} else {
		struct pmsg sreq;
		pmsg_init(&sreq, PK_REQUEST, OP_STORE_SNAP_REMOVE, 0);
		prec_set_str(&sreq, &sreq.body, "tag", r->tag);
		helper_call(r->c->sup, HELPER_STORED, &sreq, on_removed, r);
		pmsg_free(&sreq);
		return;
	}
	rm_done(r);
}

void op_snapshot_remove(struct client *c, const struct pmsg *req)
{
	struct rm_job *r = calloc(1, sizeof(*r));
	if (!r)
		abort();
	r->c = c;
	client_hold(c);
	char err[200];
	snprintf(r->shown, sizeof(r->shown), "%s", prec_str(&req->body, "tag"));
	pmsg_init_reply(&r->rep, req);
	if (snapshot_store_tag(c->uid, c->uid, r->shown, r->tag, sizeof(r->tag), err, sizeof(err)) < 0) {
		pmsg_set_error(&r->rep, PE_INVALID, "%s", err);
		rm_done(r);
		return;
	}
	struct pmsg sreq;
	pmsg_init(&sreq, PK_REQUEST, OP_STORE_SNAP_LIST, 0);
	helper_call(c->sup, HELPER_STORED, &sreq, on_rm_list, r);
	pmsg_free(&sreq);
}
