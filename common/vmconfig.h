/* A VM's configuration as the supervisor asks the launcher for it (vmm_spawn): typed
 * fields only. The launcher checks it (vmconfig_get) and builds QEMU's command line from it
 * (launcher/qemu_argv.c); nothing the supervisor sends reaches that command line as text
 * but what vmconfig_get proved to be a number, an IPv4 address or a MAC. */
#ifndef FCVM_VMCONFIG_H
#define FCVM_VMCONFIG_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto/proto.h"

enum accel { ACCEL_TCG, ACCEL_KVM };

/* The fds the launcher places for the VMM, in this order, from fd 3 (proto vmm_spawn).
 * VFD_MEM is the guest's RAM: a memfd of exactly mem_mib MiB. Booting, it is the VM's own
 * (QEMU maps it shared, so the supervisor can have it copied into a snapshot); restoring a
 * clone, it is the snapshot's template, sealed against writes (QEMU maps it private:
 * copy-on-write, the template stays as it is). */
enum vmm_fd {
	VFD_QMP,
	VFD_AGENT,
	VFD_KERNEL,
	VFD_INITRD,
	VFD_ROOTFS,
	VFD_DISK,
	VFD_IMAGE,
	VFD_CONSOLE,
	VFD_MEM,
	VFD__COUNT
};
#define VMM_FD(i) (3 + (int)(i))
/* Restoring (vmm_restore), the device state to load comes next, then the snapshot's disk
 * (read-only: the backing file of a qcow2 clone disk); with a network, the tap comes last. */
#define VMM_FD_STATE	   VMM_FD(VFD__COUNT)
#define VMM_FD_DISK_BASE   VMM_FD(VFD__COUNT + 1)
#define VMM_FD_TAP(config) VMM_FD(VFD__COUNT + ((config)->restore ? 2 : 0))
/* The seals a template memfd must carry (restoring): no write, no resize, no unsealing. */
#define VMM_TEMPLATE_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* The guest's side of its network (docs/networking.md). */
struct guest_net {
	bool on; /* off: no NIC, fcvm.net=none */
	char addr[16];
	unsigned prefix; /* 1..32 */
	char gw[16];
	char mac[18]; /* xx:xx:xx:xx:xx:xx */
	char dns[16]; /* "": none */
};

struct vm_config {
	unsigned cpus, mem_mib;
	enum accel accel;
	unsigned long tsc_khz; /* the launcher's measurement; 0: unknown (tsc_early_khz left out) */
	bool debug_console;    /* kernel messages to the console file (not quiet) */
	bool restore;	       /* a clone: RAM from a template, device state from VMM_FD_STATE */
	bool disk_overlay;     /* a clone: VFD_DISK is qcow2 over VMM_FD_DISK_BASE (else raw) */
	struct guest_net net;
};

/* Into / out of a vmm_spawn request body. vmconfig_get refuses (-1, the reason in err)
 * anything malformed; limits beyond the schema's are the launcher's policy. */
int vmconfig_put(struct pmsg *m, const struct vm_config *c);
int vmconfig_get(const struct pmsg *m, struct vm_config *c, char *err, size_t len);
/* The strings of c->net are dotted quads and a MAC (held within their fields). */
bool vmconfig_net_ok(const struct guest_net *n);

/* Which VMM runs a VM: QEMU (microvm) or Firecracker. */
enum vmm_kind { VMM_KIND_QEMU, VMM_KIND_FIRECRACKER };

/* The guest kernel's command line for c, the same for both VMMs but how the guest's reboot
 * ends the VMM (QEMU -no-reboot: a triple fault, reboot=t; Firecracker: the i8042 reset,
 * reboot=k). 0, or -1 if c's network is malformed or buf too small. */
#define VMCONFIG_CMDLINE_MAX 640
int vmconfig_cmdline(const struct vm_config *c, enum vmm_kind kind, char *buf, size_t len);

const char *accel_name(enum accel a);
/* KVM only where the host has a hardware KVM module: /dev/kvm alone is not enough (a nested
 * PVM host offers /dev/kvm on which ordinary guests hang). sysfs_root is "/sys" or a test's. */
bool accel_kvm_usable(const char *sysfs_root);
/* The host TSC frequency in kHz, measured against CLOCK_MONOTONIC_RAW (0 if unknown). */
unsigned long host_tsc_khz(void);

#endif
