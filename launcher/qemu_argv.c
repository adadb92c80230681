#include <stdio.h>
#include <string.h>

#include "common/argv.h"
#include "launcher/qemu_argv.h"

int qemu_build_argv(const struct vm_config *c, const char **argv, size_t max, char *buf, size_t buflen)
{
	struct argv_builder b = {.argv = argv, .max = max, .buf = buf, .cap = buflen};
	char cmdline[VMCONFIG_CMDLINE_MAX];
	if (vmconfig_cmdline(c, VMM_KIND_QEMU, cmdline, sizeof(cmdline)) < 0)
		return -1;

	/* The RTC stays on (rtc=off costs two 1 s timeouts at boot); no option ROMs, no
	 * default devices; -no-reboot: the guest's reboot (reboot=t) ends the VMM. */
	argv_add(&b, "-M");
	argv_add(&b, "microvm,x-option-roms=off,rtc=on,isa-serial=on,memory-backend=ram");
	argv_add(&b, "-accel");
	argv_add(&b, "%s", c->accel == ACCEL_KVM ? "kvm" : "tcg");
	argv_add(&b, "-cpu");
	argv_add(&b, "%s", c->accel == ACCEL_KVM ? "host" : "max");
	argv_add(&b, "-smp");
	argv_add(&b, "%u", c->cpus);
	argv_add(&b, "-m");
	argv_add(&b, "%u", c->mem_mib);
	/* Guest RAM is the memfd we were given, opened again through /proc (QEMU 7.2's
	 * memory-backend-file takes a path only). Booting: shared, so the memfd is the RAM and
	 * a snapshot can copy it while the VM is paused. A clone: private, copy-on-write over
	 * the sealed template, which every clone of the snapshot shares. */
	argv_add(&b, "-object");
	argv_add(&b, "memory-backend-file,id=ram,size=%uM,mem-path=/proc/self/fd/%d,share=%s", c->mem_mib,
		 VMM_FD(VFD_MEM), c->restore ? "off" : "on");
	argv_add(&b, "-nodefaults");
	argv_add(&b, "-no-user-config");
	argv_add(&b, "-display");
	argv_add(&b, "none");
	argv_add(&b, "-no-reboot");
	/* QEMU's own filter on top of ours */
	argv_add(&b, "-sandbox");
	argv_add(&b, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	/* the uncompressed vmlinux through its PVH entry: the bzImage costs ~3 s under TCG */
	argv_add(&b, "-kernel");
	argv_add(&b, "/proc/self/fd/%d", VMM_FD(VFD_KERNEL));
	argv_add(&b, "-initrd");
	argv_add(&b, "/proc/self/fd/%d", VMM_FD(VFD_INITRD));
	argv_add(&b, "-append");
	argv_add(&b, "%s", cmdline);
	argv_add(&b, "-serial");
	argv_add(&b, "file:/dev/fdset/%d", VFD_CONSOLE + 1);
	argv_add(&b, "-add-fd");
	argv_add(&b, "fd=%d,set=%d", VMM_FD(VFD_CONSOLE), VFD_CONSOLE + 1);
	/* disks: each an fd in an fdset, found in the guest by serial. -blockdev rather than
	 * -drive: -drive first reopens a writable image read-only, which an fdset holding
	 * only the read-write fd refuses. */
	static const struct {
		enum vmm_fd fd;
		const char *id;
		bool ro;
	} disks[] = {{VFD_ROOTFS, "rootfs", true}, {VFD_DISK, "state", false}, {VFD_IMAGE, "image", true}};
	for (size_t i = 0; i < sizeof(disks) / sizeof(disks[0]); i++) {
		const char *ro = disks[i].ro ? "on" : "off";
		bool overlay = disks[i].fd == VFD_DISK && c->disk_overlay;
		if (overlay) { /* a clone's qcow2 disk reads through to the snapshot's, a node of its own */
			argv_add(&b, "-add-fd");
			argv_add(&b, "fd=%d,set=%d", VMM_FD_DISK_BASE, VFD__COUNT + 2);
			argv_add(&b, "-blockdev");
			argv_add(&b, "driver=file,filename=/dev/fdset/%d,node-name=base-file,read-only=on",
				 VFD__COUNT + 2);
			argv_add(&b, "-blockdev");
			argv_add(&b, "driver=raw,file=base-file,node-name=base,read-only=on");
		}
		argv_add(&b, "-add-fd");
		argv_add(&b, "fd=%d,set=%d", VMM_FD(disks[i].fd), disks[i].fd + 1);
		argv_add(&b, "-blockdev");
		argv_add(&b, "driver=file,filename=/dev/fdset/%d,node-name=%s-file,read-only=%s%s", disks[i].fd + 1,
			 disks[i].id, ro, disks[i].ro ? "" : ",discard=unmap");
		argv_add(&b, "-blockdev");
		if (overlay)
			argv_add(&b, "driver=qcow2,file=%s-file,backing=base,node-name=%s,read-only=off", disks[i].id,
				 disks[i].id);
		else
			argv_add(&b, "driver=raw,file=%s-file,node-name=%s,read-only=%s", disks[i].id, disks[i].id, ro);
		argv_add(&b, "-device");
		argv_add(&b, "virtio-blk-device,drive=%s,serial=%s", disks[i].id, disks[i].id);
	}
	/* the NIC: the tap netd made, an inherited fd (QEMU opens nothing and runs no script) */
	if (c->net.on) {
		argv_add(&b, "-netdev");
		argv_add(&b, "tap,id=net0,fd=%d", VMM_FD_TAP(c));
		argv_add(&b, "-device");
		argv_add(&b, "virtio-net-device,netdev=net0,mac=%s", c->net.mac);
	}
	/* the agent's channel: a virtio-serial port on the listener the supervisor made */
	argv_add(&b, "-device");
	argv_add(&b, "virtio-serial-device");
	argv_add(&b, "-chardev");
	argv_add(&b, "socket,id=agent,fd=%d,server=on,wait=off", VMM_FD(VFD_AGENT));
	argv_add(&b, "-device");
	argv_add(&b, "virtserialport,chardev=agent,name=org.fcvm.agent");
	argv_add(&b, "-chardev");
	argv_add(&b, "socket,id=qmp,fd=%d,server=on,wait=off", VMM_FD(VFD_QMP));
	argv_add(&b, "-mon");
	argv_add(&b, "chardev=qmp,mode=control");
	/* a clone waits, paused, for its device state: the supervisor sets x-ignore-shared
	 * (QMP only, in 7.2) and then loads VMM_FD_STATE with migrate-incoming */
	if (c->restore) {
		argv_add(&b, "-incoming");
		argv_add(&b, "defer");
	}
	return b.overflow ? -1 : (int)b.n;
}
