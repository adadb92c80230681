/* The QEMU microvm command line for one VM, built from its configuration alone (no I/O
 * besides reading the host's TSC frequency and KVM module presence, which callers may
 * override), so that tests can check it exactly. */
#ifndef FCVM_QEMU_ARGV_H
#define FCVM_QEMU_ARGV_H

#include <stdbool.h>
#include <stddef.h>

/* The fds the launcher places for the VMM, in this order, from fd 3 (proto vmm_spawn). */
enum vmm_fd { VFD_QMP, VFD_AGENT, VFD_KERNEL, VFD_INITRD, VFD_ROOTFS, VFD_DISK, VFD_IMAGE, VFD_CONSOLE, VFD__COUNT };
#define VMM_FD(i) (3 + (int)(i))
/* With a network, the launcher places the tap right after the always-present fds. */
#define VMM_FD_TAP VMM_FD(VFD__COUNT)

enum accel { ACCEL_TCG, ACCEL_KVM };

/* The guest's side of its network (docs/networking.md): these strings end up on QEMU's and
 * the kernel's command lines, so qemu_build_argv refuses anything but dotted quads and a
 * colon-separated MAC. */
struct qemu_net {
	bool on; /* off: no NIC, fcvm.net=none */
	char addr[16];
	unsigned prefix; /* 1..32 */
	char gw[16];
	char mac[18]; /* xx:xx:xx:xx:xx:xx */
	char dns[16]; /* "": none */
};

struct qemu_config {
	unsigned cpus, mem_mib;
	enum accel accel;
	unsigned long tsc_khz; /* 0: unknown (then tsc_early_khz is left out) */
	bool debug_console;    /* kernel messages to the console file (not quiet) */
	struct qemu_net net;
};

#define QEMU_ARGV_MAX 96

/* Fill argv (without argv[0]) with string storage in buf. Returns the count, or -1 when it
 * does not fit or c->net holds a malformed address. */
int qemu_build_argv(const struct qemu_config *c, const char **argv, size_t max, char *buf, size_t buflen);

/* KVM only where the host has a hardware KVM module: /dev/kvm alone is not enough (a nested
 * PVM host offers /dev/kvm on which ordinary guests hang). sysfs_root is "/sys" or a test's. */
bool accel_kvm_usable(const char *sysfs_root);
/* The host TSC frequency in kHz, measured against CLOCK_MONOTONIC_RAW (0 if unknown). */
unsigned long host_tsc_khz(void);

const char *accel_name(enum accel a);

#endif
