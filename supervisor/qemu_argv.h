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

enum accel { ACCEL_TCG, ACCEL_KVM };

struct qemu_config {
	unsigned cpus, mem_mib;
	enum accel accel;
	unsigned long tsc_khz; /* 0: unknown (then tsc_early_khz is left out) */
	bool debug_console;    /* kernel messages to the console file (not quiet) */
};

#define QEMU_ARGV_MAX 96

/* Fill argv (without argv[0]) with string storage in buf. Returns the count, or -1 when it
 * does not fit. */
int qemu_build_argv(const struct qemu_config *c, const char **argv, size_t max, char *buf, size_t buflen);

/* KVM only where the host has a hardware KVM module: /dev/kvm alone is not enough (a nested
 * PVM host offers /dev/kvm on which ordinary guests hang). sysfs_root is "/sys" or a test's. */
bool accel_kvm_usable(const char *sysfs_root);
/* The host TSC frequency in kHz, measured against CLOCK_MONOTONIC_RAW (0 if unknown). */
unsigned long host_tsc_khz(void);

const char *accel_name(enum accel a);

#endif
