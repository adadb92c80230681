/* Stopping a VM and cleaning up after its VMM: ask the agent for an orderly shutdown (the
 * guest reboots, and -no-reboot ends QEMU), QMP `quit` if that takes too long, then close
 * everything, tell whoever waits for the container's exit, and remove the disk and the VM's
 * directory when it was started with --rm (or `fcvm rm` asks later). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "supervisor/client.h"
#include "supervisor/snapshot.h"
#include "supervisor/vm.h"
#include "supervisor/vmm.h"

#define STOP_AGENT_MS 15000 /* orderly shutdown through the agent */
#define STOP_QMP_MS   5000  /* then `quit` */

static void on_stop_timeout(evutil_socket_t fd, short what, void *arg);

static void arm(struct vm *vm, unsigned ms, event_callback_fn cb)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_del(vm->timer);
	event_assign(vm->timer, vm->sup->base, -1, 0, cb, vm);
	evtimer_add(vm->timer, &tv);
}

static void on_quit_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct vm *vm = arg;
	(void)fd;
	(void)what;
	log_err("%s: the VMM (pid %d) does not exit; marking it lost", vm->name, vm->pid);
	vmm_of(vm)->detach(vm);
	agent_link_close(vm);
	vm->status = VM_LOST;
	vm_vmm_gone(vm);
}

static void on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct vm *vm = arg;
	(void)fd;
	(void)what;
	log_info("%s: no orderly shutdown in time; asking QEMU to quit", vm->name);
	vmm_of(vm)->quit(vm);
	arm(vm, STOP_QMP_MS, on_quit_timeout);
}

static void on_shutdown_reply(struct vm *vm, struct pmsg *rep, void *arg)
{
	(void)arg;
	if (rep->err_code != PE_OK && vm->status == VM_STOPPING) {
		log_info("%s: agent shutdown failed (%s); asking QEMU to quit", vm->name,
			 rep->err_msg ? rep->err_msg : "?");
		vmm_of(vm)->quit(vm);
		arm(vm, STOP_QMP_MS, on_quit_timeout);
	}
}

void vm_stop(struct vm *vm, const char *why)
{
	if (vm->status == VM_CREATING) {
		log_info("%s: to stop once its VMM runs (%s)", vm->name, why);
		vm->stop_on_start = true;
		return;
	}
	if (vm->status != VM_BOOTING && vm->status != VM_RUNNING)
		return;
	log_info("%s: stopping (%s)", vm->name, why);
	vm->status = VM_STOPPING;
	snprintf(vm->health, sizeof(vm->health), "unknown");
	if (vm->health_timer)
		event_del(vm->health_timer);
	if (vm->agent_up) {
		struct pmsg req;
		pmsg_init(&req, PK_REQUEST, OP_AGENT_SHUTDOWN, 0);
		agent_call(vm, &req, on_shutdown_reply, NULL);
		pmsg_free(&req);
		arm(vm, STOP_AGENT_MS, on_stop_timeout);
	} else {
		vmm_of(vm)->quit(vm);
		arm(vm, STOP_QMP_MS, on_quit_timeout);
	}
}

static void finish_sessions(struct vm *vm)
{
	struct vm_session *se;
	while ((se = TAILQ_FIRST(&vm->sessions))) {
		TAILQ_REMOVE(&vm->sessions, se, link);
		if (se->client) {
			int code = se->exited ? se->exit_code : (vm->exit_code >= 0 ? vm->exit_code : 137);
			vm_send_exit(se->client, se->sid, code, se->exited ? se->exit_signal : 0, se->offset);
		}
		free(se);
	}
	vm_logs_vm_ended(vm);
}

void vm_vmm_gone(struct vm *vm)
{
	if (vm->status == VM_STOPPED || (vm->status == VM_LOST && !vm->qmp && vm->pid == 0))
		return;
	bool expected = vm->status == VM_STOPPING || vm->status == VM_LOST;
	snapshot_vm_gone(vm);
	vmm_of(vm)->detach(vm); /* what was asked of it fails, seeing it detached */
	vmm_of(vm)->gone(vm);
	agent_link_close(vm);
	event_del(vm->timer);
	if (vm->health_timer)
		event_del(vm->health_timer);
	if (!expected)
		log_err("%s: the VMM (pid %d) went away unexpectedly; see vms/%s/console.log", vm->name, vm->pid,
			vm->dirname);
	else
		log_info("%s: VMM exited", vm->name);
	vm->pid = 0;
	close_fdp(&vm->ram_fd); /* the guest's RAM goes with its VMM */
	close_fdp(&vm->image_fd);
	vm_net_release(vm);
	if (vm->status != VM_LOST)
		vm->status = VM_STOPPED;
	snprintf(vm->health, sizeof(vm->health), "%s", vm->agent.garbage ? "unhealthy" : "unknown");
	pmsg_free(&vm->run_start);
	vm_wait_ended(vm);
	if (vm->remove_on_stop) {
		vm_remove(vm); /* its sessions are told after the disk is gone */
		return;
	}
	vm_record_save(vm);
	finish_sessions(vm);
}

struct vm_removal {
	struct supervisor *sup;
	struct vm *vm;
};

static void free_vm(struct vm *vm)
{
	vm_wait_ended(vm);
	finish_sessions(vm);
	if (vm->rm_waiter) {
		client_send(vm->rm_waiter, &vm->rm_reply);
		client_release(vm->rm_waiter);
		pmsg_free(&vm->rm_reply);
	}
	TAILQ_REMOVE(&vm->sup->vms, vm, link);
	snapshot_vm_gone(vm);
	vmm_of(vm)->gone(vm);
	if (vm->dirfd >= 0) {
		static const char *const files[] = {
		    "qmp.sock",	    "agent.sock", "console.log", "output.log",
		    "output.log.1", "vm.json",	  "vm.json.tmp"}; /* a predecessor killed mid-save */
		for (size_t i = 0; i < ARRAY_LEN(files); i++)
			unlinkat(vm->dirfd, files[i], 0);
		close(vm->dirfd);
		if (unlinkat(vm->sup->vms_dirfd, vm->dirname, AT_REMOVEDIR) < 0)
			log_err("%s: cannot remove its directory: %s", vm->name, strerror(errno));
	}
	if (vm->agent_queue)
		evbuffer_free(vm->agent_queue);
	close_fdp(&vm->log_fd);
	close_fdp(&vm->ram_fd);
	close_fdp(&vm->image_fd);
	event_free(vm->timer);
	if (vm->health_timer)
		event_free(vm->health_timer);
	pmsg_free(&vm->run_start);
	free(vm);
}

#define RM_RETRY_MS  500
#define RM_TRIES_MAX 40 /* stored restarting: 20 s, then the client is told */

static void ask_to_remove_disk(struct vm *vm);

static void on_rm_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ask_to_remove_disk(arg);
}

/* The VM goes only with its disk: while stored cannot take the removal (restarting) it is
 * asked again; past that, or on any other failure, the VM stays, stopped, with its disk and
 * record, and the client is told (`fcvm rm` again tries again). */
static void on_disk_removed(struct pmsg *rep, void *arg)
{
	struct vm *vm = arg;
	if (rep->err_code == PE_OK || rep->err_code == PE_NOT_FOUND) {
		free_vm(vm);
		return;
	}
	if (rep->err_code == PE_UNAVAILABLE && ++vm->rm_tries < RM_TRIES_MAX && !vm->sup->stopping) {
		struct timeval tv = {0, RM_RETRY_MS * 1000};
		event_del(vm->timer);
		event_assign(vm->timer, vm->sup->base, -1, 0, on_rm_retry, vm);
		evtimer_add(vm->timer, &tv);
		return;
	}
	log_err("%s: its disk was not removed (%s): the VM is kept", vm->name, rep->err_msg ? rep->err_msg : "?");
	vm->disk_made = true;
	vm->removing = false;
	vm->rm_tries = 0;
	vm_record_save(vm);
	if (vm->rm_waiter) {
		pmsg_set_error(&vm->rm_reply, rep->err_code,
			       "VM '%s' is kept: its disk was not removed (%s); `fcvm rm %s` tries again", vm->name,
			       rep->err_msg ? rep->err_msg : "?", vm->name);
		client_send(vm->rm_waiter, &vm->rm_reply);
		client_release(vm->rm_waiter);
		pmsg_free(&vm->rm_reply);
		vm->rm_waiter = NULL;
	}
	finish_sessions(vm); /* whoever waited for its end (a foreground --rm run) hears of it now */
}

static void ask_to_remove_disk(struct vm *vm)
{
	char disk[80];
	snprintf(disk, sizeof(disk), "vm-%s", vm->id);
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_STORE_REMOVE, 0);
	prec_set_str(&req, &req.body, "name", disk);
	helper_call(vm->sup, HELPER_STORED, &req, on_disk_removed, vm);
	pmsg_free(&req);
}

void vm_remove(struct vm *vm)
{
	if ((vm->status != VM_STOPPED && vm->status != VM_LOST) || vm->removing)
		return; /* removing: its disk's removal is in flight, and ends it */
	if (!vm->disk_made) {
		free_vm(vm);
		return;
	}
	vm->disk_made = false;
	vm->removing = true;
	vm->rm_tries = 0;
	ask_to_remove_disk(vm);
}

void vm_remove_for(struct vm *vm, struct client *c, const struct pmsg *req)
{
	if (vm->rm_waiter) { /* a second rm while the first runs: not a success it cannot vouch for */
		client_refuse(c, req, PE_BUSY,
			      "VM '%s' is being removed already (by another `fcvm rm`, which is told "
			      "how it ends)",
			      vm->name);
		return;
	}
	vm->rm_waiter = c;
	client_hold(c);
	pmsg_init_reply(&vm->rm_reply, req);
	vm->remove_on_stop = true;
	vm_remove(vm);
}

void vm_stop_all(struct supervisor *s)
{
	struct vm *vm, *next;
	for (vm = TAILQ_FIRST(&s->vms); vm; vm = next) {
		next = TAILQ_NEXT(vm, link);
		vm->remove_on_stop = true; /* nothing outlives its supervisor yet */
		if (vm->status == VM_STOPPED || vm->status == VM_LOST)
			vm_remove(vm);
		else
			vm_stop(vm, "the supervisor is stopping");
	}
}

bool vm_all_gone(const struct supervisor *s)
{
	return TAILQ_EMPTY(&s->vms);
}
