#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "supervisor/qemu_argv.h"

const char *accel_name(enum accel a)
{
	return a == ACCEL_KVM ? "kvm" : "tcg";
}

bool accel_kvm_usable(const char *sysfs_root)
{
	char path[256];
	static const char *const mods[] = {"kvm_intel", "kvm_amd"};
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		return false;
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/module/%s", sysfs_root, mods[i]);
		if (access(path, F_OK) == 0)
			return true;
	}
	return false;
}

static unsigned long long mono_raw_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* Without tsc_early_khz about one boot in four hung at "Unable to calibrate against PIT"
 * under TCG (guest-boot-notes). Measured, never hard-coded: 20 ms against the raw clock
 * gives better than 0.1 %, rounded to 1 MHz as the kernel's own calibration would. */
unsigned long host_tsc_khz(void)
{
	unsigned long long t0 = mono_raw_ns(), c0 = __rdtsc();
	struct timespec d = {0, 20 * 1000 * 1000};
	while (nanosleep(&d, &d) < 0 && errno == EINTR)
		;
	unsigned long long t1 = mono_raw_ns(), c1 = __rdtsc();
	if (t1 <= t0 || c1 <= c0)
		return 0;
	unsigned long long khz = (c1 - c0) * 1000000ull / (t1 - t0);
	return (unsigned long)((khz + 500) / 1000 * 1000);
}

struct argv_builder {
	const char **argv;
	size_t n, max;
	char *buf;
	size_t used, cap;
	bool overflow;
};

static void add(struct argv_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct argv_builder *b, const char *fmt, ...)
{
	va_list ap;
	if (b->overflow || b->n >= b->max) {
		b->overflow = true;
		return;
	}
	va_start(ap, fmt);
	int len = vsnprintf(b->buf + b->used, b->cap - b->used, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= b->cap - b->used) {
		b->overflow = true;
		return;
	}
	b->argv[b->n++] = b->buf + b->used;
	b->used += (size_t)len + 1;
}

/* A dotted quad held in a fixed-size field (terminated within it). inet_pton takes exactly
 * four decimal parts, no leading zeros, nothing else. */
static bool valid_ipv4(const char *s, size_t size)
{
	struct in_addr a;
	return strnlen(s, size) < size && inet_pton(AF_INET, s, &a) == 1;
}

static bool valid_mac(const char *s, size_t size)
{
	if (strnlen(s, size) != 17)
		return false;
	for (size_t i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

static bool valid_net(const struct qemu_net *n)
{
	return valid_ipv4(n->addr, sizeof(n->addr)) && n->prefix >= 1 && n->prefix <= 32 &&
	       valid_ipv4(n->gw, sizeof(n->gw)) && valid_mac(n->mac, sizeof(n->mac)) &&
	       (n->dns[0] == 0 || valid_ipv4(n->dns, sizeof(n->dns)));
}

int qemu_build_argv(const struct qemu_config *c, const char **argv, size_t max, char *buf, size_t buflen)
{
	struct argv_builder b = {.argv = argv, .max = max, .buf = buf, .cap = buflen};
	char tsc[48] = "", net[96] = "none";
	if (c->net.on) {
		if (!valid_net(&c->net))
			return -1;
		snprintf(net, sizeof(net), "%s/%u,%s,%s%s%s", c->net.addr, c->net.prefix, c->net.gw, c->net.mac,
			 c->net.dns[0] ? "," : "", c->net.dns);
	}
	if (c->tsc_khz)
		snprintf(tsc, sizeof(tsc), " tsc_early_khz=%lu", c->tsc_khz);

	/* The RTC stays on (rtc=off costs two 1 s timeouts at boot); no option ROMs, no
	 * default devices; -no-reboot: the guest's reboot (reboot=t) ends the VMM. */
	add(&b, "-M");
	add(&b, "microvm,x-option-roms=off,rtc=on,isa-serial=on");
	add(&b, "-accel");
	add(&b, "%s", c->accel == ACCEL_KVM ? "kvm" : "tcg");
	add(&b, "-cpu");
	add(&b, "%s", c->accel == ACCEL_KVM ? "host" : "max");
	add(&b, "-smp");
	add(&b, "%u", c->cpus);
	add(&b, "-m");
	add(&b, "%u", c->mem_mib);
	add(&b, "-nodefaults");
	add(&b, "-no-user-config");
	add(&b, "-display");
	add(&b, "none");
	add(&b, "-no-reboot");
	/* QEMU's own filter on top of ours */
	add(&b, "-sandbox");
	add(&b, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	/* the uncompressed vmlinux through its PVH entry: the bzImage costs ~3 s under TCG */
	add(&b, "-kernel");
	add(&b, "/proc/self/fd/%d", VMM_FD(VFD_KERNEL));
	add(&b, "-initrd");
	add(&b, "/proc/self/fd/%d", VMM_FD(VFD_INITRD));
	add(&b, "-append");
	add(&b,
	    "console=ttyS0 reboot=t panic=-1 %s cryptomgr.notests no_timer_check tsc=reliable%s "
	    "i8042.noaux i8042.nokbd i8042.nopnp 8250.nr_uarts=1 pci=off mitigations=off init_on_alloc=0 "
	    "apparmor=0 audit=0 rodata=off fcvm.net=%s",
	    c->debug_console ? "fcvm.debug=1" : "quiet", tsc, net);
	add(&b, "-serial");
	add(&b, "file:/dev/fdset/%d", VFD_CONSOLE + 1);
	add(&b, "-add-fd");
	add(&b, "fd=%d,set=%d", VMM_FD(VFD_CONSOLE), VFD_CONSOLE + 1);
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
		add(&b, "-add-fd");
		add(&b, "fd=%d,set=%d", VMM_FD(disks[i].fd), disks[i].fd + 1);
		add(&b, "-blockdev");
		add(&b, "driver=file,filename=/dev/fdset/%d,node-name=%s-file,read-only=%s%s", disks[i].fd + 1,
		    disks[i].id, ro, disks[i].ro ? "" : ",discard=unmap");
		add(&b, "-blockdev");
		add(&b, "driver=raw,file=%s-file,node-name=%s,read-only=%s", disks[i].id, disks[i].id, ro);
		add(&b, "-device");
		add(&b, "virtio-blk-device,drive=%s,serial=%s", disks[i].id, disks[i].id);
	}
	/* the NIC: the tap netd made, an inherited fd (QEMU opens nothing and runs no script) */
	if (c->net.on) {
		add(&b, "-netdev");
		add(&b, "tap,id=net0,fd=%d", VMM_FD_TAP);
		add(&b, "-device");
		add(&b, "virtio-net-device,netdev=net0,mac=%s", c->net.mac);
	}
	/* the agent's channel: a virtio-serial port on the listener the supervisor made */
	add(&b, "-device");
	add(&b, "virtio-serial-device");
	add(&b, "-chardev");
	add(&b, "socket,id=agent,fd=%d,server=on,wait=off", VMM_FD(VFD_AGENT));
	add(&b, "-device");
	add(&b, "virtserialport,chardev=agent,name=org.fcvm.agent");
	add(&b, "-chardev");
	add(&b, "socket,id=qmp,fd=%d,server=on,wait=off", VMM_FD(VFD_QMP));
	add(&b, "-mon");
	add(&b, "chardev=qmp,mode=control");
	return b.overflow ? -1 : (int)b.n;
}
