/* The VMM backend: what the VM lifecycle (vm.c, vm_stop.c, vm_record.c, snapshot.c,
 * vm_clone.c) asks of a VM's VMM process, and nothing else does. QEMU over QMP is the one
 * backend so far (vmm_qemu.c); a Firecracker one answers the same calls over its API.
 *
 * At most one operation that takes a while (save_state, restore) runs per VM; each ends with
 * its callback exactly once: done, failed, or the VMM gone (vmm_gone). */
#ifndef FCVM_VMM_H
#define FCVM_VMM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/vmconfig.h"

struct vm;

typedef void (*vmm_done_cb)(struct vm *vm, bool ok, const char *error, void *arg);

struct vmm_backend {
	const char *name;
	/* Connect to a VMM just started (or found running by a restarted supervisor). */
	int (*attach)(struct vm *vm);
	void (*detach)(struct vm *vm);
	void (*pause)(struct vm *vm, vmm_done_cb cb, void *arg);
	void (*resume)(struct vm *vm, vmm_done_cb cb, void *arg);
	/* Paused: the device state into FD (lent for the call), the RAM left in its memfd. */
	void (*save_state)(struct vm *vm, int fd, vmm_done_cb cb, void *arg);
	/* A VMM started to restore (vmm_restore): load the state it was given, then run. */
	void (*restore)(struct vm *vm, vmm_done_cb cb, void *arg);
	/* Ask the VMM to exit (the guest is not asked: vm_stop does that first). */
	void (*quit)(struct vm *vm);
	/* The VMM is gone: fail what is in flight (callbacks run now). */
	void (*gone)(struct vm *vm);
};

extern const struct vmm_backend vmm_qemu;

struct supervisor;
/* --vmm ASKED (NULL: auto) for a new VM (vmm_choice.c): PE_OK with *kind, or a PE_ code with
 * why (Firecracker asked for where it cannot run: not installed, no hardware KVM). */
int vmm_choose(const struct supervisor *s, const char *asked, enum vmm_kind *kind, char *why, size_t n);
const char *vmm_kind_name(enum vmm_kind k);

static inline const struct vmm_backend *vmm_of(const struct vm *vm)
{
	(void)vm;
	return &vmm_qemu;
}

#endif
