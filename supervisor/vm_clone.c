/* Clones: a VM started from a snapshot. stored opens the snapshot (its sealed template RAM,
 * device state, a disk of the clone's own, the image); the launcher starts QEMU paused with
 * `-incoming defer` and the template mapped private; then, over QMP, x-ignore-shared (the
 * RAM is not in the stream: it is the template), migrate-incoming from the state fd the
 * launcher placed, and cont. Its container runs already: the supervisor follows it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/assets.h"
#include "common/log.h"
#include "common/util.h"
#include "supervisor/client.h"
#include "supervisor/snapshot.h"
#include "supervisor/startup_cache.h"
#include "supervisor/vm.h"
#include "supervisor/quota.h"
#include "supervisor/vmm.h"
#include "supervisor/vm_start.h"

static void on_snapshot(struct pmsg *rep, void *arg);

void clone_ask_for_snapshot(struct vm_start *st)
{
	struct pmsg req;
	char disk[80];
	snprintf(disk, sizeof(disk), "vm-%s", st->vm->id);
	pmsg_init(&req, PK_REQUEST, OP_STORE_SNAP_OPEN, 0);
	prec_set_str(&req, &req.body, "tag", st->tag);
	prec_set_str(&req, &req.body, "disk", disk);
	helper_call(st->vm->sup, HELPER_STORED, &req, on_snapshot, st);
	pmsg_free(&req);
}

static void on_snapshot(struct pmsg *rep, void *arg)
{
	struct vm_start *st = arg;
	struct vm *vm = st->vm;
	const struct precord *b = &rep->body;
	uint64_t owner = 0, cpu = 0, mem = 0;
	char assets[80];
	const char *shown = snapshot_shown_tag(vm->owner, st->tag);
	if (start_retry_later(st, rep, clone_ask_for_snapshot))
		return;
	if (rep->err_code != PE_OK && cache_open_failed(st, rep))
		return;
	if (rep->err_code == PE_NOT_FOUND) {
		start_fail(st, PE_NOT_FOUND, "no snapshot tagged '%s' (see `fcvm snapshot ls`)", shown);
		return;
	}
	if (rep->err_code != PE_OK) {
		start_fail(st, rep->err_code, "snapshot '%s' cannot be cloned: %s", shown,
			   rep->err_msg ? rep->err_msg : "?");
		return;
	}
	/* stored made the clone's disk: it goes with the VM from now on */
	vm->disk_made = true;
	st->ram_fd = pmsg_take_fd(rep, 0);
	st->state_fd = pmsg_take_fd(rep, 1);
	st->disk_fd = pmsg_take_fd(rep, 2);
	close_fdp(&st->image_fd); /* a cached run's, from its client: the entry has the same image */
	st->image_fd = pmsg_take_fd(rep, 3);
	st->disk_base_fd = pmsg_take_fd(rep, 4);
	vm->qc.disk_overlay = strcmp(prec_str(b, "disk_format") ? prec_str(b, "disk_format") : "", "qcow2") == 0;
	prec_uint(b, "owner", &owner);
	prec_uint(b, "cpu", &cpu);
	prec_uint(b, "mem", &mem);
	if (owner != vm->owner && vm->owner != 0) {
		/* as if it did not exist: another user's snapshots are not even named */
		start_fail(st, PE_NOT_FOUND, "no snapshot tagged '%s' (see `fcvm snapshot ls`)", shown);
		return;
	}
	if ((st->want_cpu && st->want_cpu != cpu) || (st->want_mem && st->want_mem != mem)) {
		start_fail(st, PE_INVALID,
			   "snapshot '%s' is of a VM with %llu vCPUs and %llu MiB: a clone has the same (leave out "
			   "--cpu and --mem)",
			   shown, (unsigned long long)cpu, (unsigned long long)mem);
		return;
	}
	if (snapshot_assets_id(vm->sup, assets, sizeof(assets)) < 0 ||
	    strcmp(assets, prec_str(b, "assets") ? prec_str(b, "assets") : "") != 0) {
		start_fail(st, PE_INVALID,
			   "snapshot '%s' was taken on another kernel or root filesystem than the guest assets "
			   "installed now (`fcvm setup` changed them): take it again",
			   shown);
		return;
	}
	/* the same devices as the VM it was taken of: a NIC if and only if that had one */
	const char *net = prec_str(b, "network") ? prec_str(b, "network") : "none";
	bool nic = strcmp(net, "none") != 0;
	if (nic != st->has_net) {
		if (st->net_asked) {
			start_fail(st, PE_INVALID,
				   "snapshot '%s' is of a VM %s network: a clone has the same devices (%s)", shown,
				   nic ? "with a" : "without",
				   nic ? "--network bridged or rootless" : "--network none");
			return;
		}
		if (!nic) { /* the default was a network: the snapshot has none */
			pmsg_free(&st->net_req);
			st->has_net = false;
			snprintf(vm->network, sizeof(vm->network), "none");
		} else {
			start_fail(st, PE_INVALID, "snapshot '%s' is of a VM with a network: give the clone one too",
				   shown);
			return;
		}
	}
	vm->qc.cpus = (unsigned)cpu;
	vm->qc.mem_mib = (unsigned)mem;
	vm->qc.accel = strcmp(prec_str(b, "accel"), "kvm") == 0 ? ACCEL_KVM : ACCEL_TCG;
	vm->qc.restore = true;
	char why[300];
	int qrc = quota_check_vm(vm->sup, vm, why, sizeof(why));
	if (qrc) {
		start_fail(st, qrc, "%s", why);
		return;
	}
	if (st->cache_try >= 0)
		cache_opened(st); /* its image keeps the name the user gave */
	else
		snprintf(vm->image, sizeof(vm->image), "%s", prec_str(b, "image"));
	start_have_disk(st);
}

/* ---- restoring, once the VMM runs ---- */

static void on_restored(struct vm *vm, bool ok, const char *error, void *arg)
{
	uint64_t started = (uint64_t)(uintptr_t)arg;
	if (!ok) {
		log_err("%s: restore from snapshot '%s' failed: %s", vm->name, vm->clone_of, error ? error : "?");
		if (vm->qmp) /* the VMM still runs: stop it */
			vm_stop(vm, "its restore failed");
		return;
	}
	log_info("%s: restored from '%s' in %llu ms", vm->name, vm->clone_of,
		 (unsigned long long)(now_mono_ms() - started));
}

void clone_restore(struct vm *vm)
{
	vmm_of(vm)->restore(vm, on_restored, (void *)(uintptr_t)now_mono_ms());
}

/* ---- the clone's identity, once its agent answers ---- */

static void on_identity(struct vm *vm, struct pmsg *rep, void *arg)
{
	uint64_t step = 0;
	(void)arg;
	if (rep->err_code != PE_OK) {
		log_err("%s: its agent did not take its new identity: %s", vm->name, rep->err_msg ? rep->err_msg : "?");
		vm_stop(vm, "a clone without its own identity");
		return;
	}
	prec_uint(&rep->body, "clock_step_ms", &step);
	log_info("%s: identity set (the guest clock stepped %llu ms)", vm->name, (unsigned long long)step);
	vm->identity_set = true;
	vm_record_save(vm);
	vm_agent_ready(vm, NULL);
}

void clone_identity(struct vm *vm)
{
	unsigned char entropy[64];
	struct pmsg req;
	if (getrandom(entropy, sizeof(entropy), 0) != (ssize_t)sizeof(entropy)) {
		vm_stop(vm, "no entropy for a clone");
		return;
	}
	pmsg_init(&req, PK_REQUEST, OP_AGENT_RESTORE, 0);
	prec_set_uint(&req, &req.body, "epoch", 1);
	prec_set_uint(&req, &req.body, "time_ns", now_realtime_ns());
	prec_set_bin(&req, &req.body, "entropy", entropy, sizeof(entropy));
	if (!vm->cache.from) /* a cached run is a VM as a cold one is: the guest's own hostname */
		prec_set_str(&req, &req.body, "hostname", vm->name);
	if (vm->cache.release)
		prec_set_bool(&req, &req.body, "release", true);
	agent_call(vm, &req, on_identity, NULL);
	pmsg_free(&req);
	explicit_bzero(entropy, sizeof(entropy));
}
