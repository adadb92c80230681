/* supervisor/qemu_argv.c: the QEMU command line for a VM, and the accelerator choice. */
#include <fcntl.h>
#include <sys/stat.h>

#include "launcher/qemu_argv.h"
#include "tests/unit/check.h"

static int build(const struct vm_config *c, const char **argv, char *buf, size_t buflen)
{
	return qemu_build_argv(c, argv, QEMU_ARGV_MAX, buf, buflen);
}

/* the value following option opt (the n-th occurrence), or NULL */
static const char *opt_value(const char **argv, int n, const char *opt, int which)
{
	for (int i = 0; i + 1 < n; i++)
		if (strcmp(argv[i], opt) == 0 && which-- == 0)
			return argv[i + 1];
	return NULL;
}

TEST(tcg_command_line)
{
	struct vm_config c = {.cpus = 2, .mem_mib = 768, .accel = ACCEL_TCG, .tsc_khz = 2600000};
	const char *argv[QEMU_ARGV_MAX];
	char buf[8192];
	int n = build(&c, argv, buf, sizeof(buf));
	CHECK(n > 0);
	CHECK_STR(opt_value(argv, n, "-accel", 0), "tcg");
	CHECK_STR(opt_value(argv, n, "-cpu", 0), "max");
	CHECK_STR(opt_value(argv, n, "-smp", 0), "2");
	CHECK_STR(opt_value(argv, n, "-m", 0), "768");
	CHECK(strstr(opt_value(argv, n, "-M", 0), "microvm") && strstr(opt_value(argv, n, "-M", 0), "rtc=on"));
	const char *append = opt_value(argv, n, "-append", 0);
	CHECK(strstr(append, "tsc_early_khz=2600000") && strstr(append, "reboot=t") && strstr(append, "quiet"));
	/* the kernel and initramfs are inherited fds, never paths */
	CHECK_STR(opt_value(argv, n, "-kernel", 0), "/proc/self/fd/5");
	CHECK_STR(opt_value(argv, n, "-initrd", 0), "/proc/self/fd/6");
	/* QEMU's own sandbox, and no reboot */
	CHECK(strstr(opt_value(argv, n, "-sandbox", 0), "spawn=deny"));
	bool noreboot = false;
	for (int i = 0; i < n; i++)
		noreboot |= strcmp(argv[i], "-no-reboot") == 0;
	CHECK(noreboot);
}

TEST(disks_and_sockets_are_fds)
{
	struct vm_config c = {.cpus = 1, .mem_mib = 512, .accel = ACCEL_KVM};
	const char *argv[QEMU_ARGV_MAX];
	char buf[8192];
	int n = build(&c, argv, buf, sizeof(buf));
	CHECK(n > 0);
	CHECK_STR(opt_value(argv, n, "-accel", 0), "kvm");
	CHECK_STR(opt_value(argv, n, "-cpu", 0), "host");
	CHECK(!strstr(opt_value(argv, n, "-append", 0), "tsc_early_khz")); /* unknown: left out */
	/* rootfs read-only, the VM's disk writable, the image read-only; each from its fd */
	CHECK_STR(opt_value(argv, n, "-add-fd", 1), "fd=7,set=5");
	CHECK_STR(opt_value(argv, n, "-add-fd", 2), "fd=8,set=6");
	CHECK_STR(opt_value(argv, n, "-add-fd", 3), "fd=9,set=7");
	CHECK(strstr(opt_value(argv, n, "-blockdev", 0), "read-only=on"));
	CHECK(strstr(opt_value(argv, n, "-blockdev", 2), "read-only=off"));
	CHECK(strstr(opt_value(argv, n, "-blockdev", 4), "read-only=on"));
	CHECK_STR(opt_value(argv, n, "-device", 0), "virtio-blk-device,drive=rootfs,serial=rootfs");
	CHECK_STR(opt_value(argv, n, "-chardev", 0), "socket,id=agent,fd=4,server=on,wait=off");
	CHECK_STR(opt_value(argv, n, "-chardev", 1), "socket,id=qmp,fd=3,server=on,wait=off");
	/* nothing names a host path */
	for (int i = 0; i < n; i++)
		CHECK(!strstr(argv[i], "/var/") && !strstr(argv[i], "/tmp/") && !strstr(argv[i], ".sock"));
}

TEST(too_small_is_an_error)
{
	struct vm_config c = {.cpus = 1, .mem_mib = 512, .accel = ACCEL_TCG};
	const char *argv[QEMU_ARGV_MAX];
	char buf[256];
	CHECK_EQ(qemu_build_argv(&c, argv, QEMU_ARGV_MAX, buf, sizeof(buf)), -1);
	char big[8192];
	CHECK_EQ(qemu_build_argv(&c, argv, 10, big, sizeof(big)), -1);
}

/* KVM needs a hardware module, not just /dev/kvm (a PVM host has /dev/kvm and hangs guests) */
TEST(kvm_only_with_a_hardware_module)
{
	char dir[] = "/tmp/fcvm-sysfs.XXXXXX", path[128];
	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/module", dir);
	CHECK(mkdir(path, 0755) == 0);
	CHECK(!accel_kvm_usable(dir));
	snprintf(path, sizeof(path), "%s/module/kvm_amd", dir);
	CHECK(mkdir(path, 0755) == 0);
	CHECK_EQ(accel_kvm_usable(dir), access("/dev/kvm", R_OK | W_OK) == 0);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/module", dir);
	rmdir(path);
	rmdir(dir);
}

TEST(tsc_frequency_is_measured)
{
	unsigned long khz = host_tsc_khz();
	CHECK(khz == 0 || (khz >= 100000 && khz <= 10000000)); /* 100 MHz .. 10 GHz, whole MHz */
	CHECK_EQ(khz % 1000, 0);
}

/* The whole command line, so that any change to it is a deliberate one. */
static const char *const argv_common_head[] = {
    "-M",
    "microvm,x-option-roms=off,rtc=on,isa-serial=on,memory-backend=ram",
    "-accel",
    "kvm",
    "-cpu",
    "host",
    "-smp",
    "1",
    "-m",
    "512",
    "-object",
    "memory-backend-file,id=ram,size=512M,mem-path=/proc/self/fd/11,share=on",
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-no-reboot",
    "-sandbox",
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    "-kernel",
    "/proc/self/fd/5",
    "-initrd",
    "/proc/self/fd/6",
    "-append"};
#define APPEND_HEAD                                                                                                    \
	"console=ttyS0 reboot=t panic=-1 quiet cryptomgr.notests no_timer_check tsc=reliable i8042.noaux "             \
	"i8042.nokbd i8042.nopnp 8250.nr_uarts=1 pci=off mitigations=off init_on_alloc=0 apparmor=0 audit=0 "          \
	"rodata=off "
static const char *const argv_disks[] = {
    "-serial",	 "file:/dev/fdset/8",
    "-add-fd",	 "fd=10,set=8",
    "-add-fd",	 "fd=7,set=5",
    "-blockdev", "driver=file,filename=/dev/fdset/5,node-name=rootfs-file,read-only=on",
    "-blockdev", "driver=raw,file=rootfs-file,node-name=rootfs,read-only=on",
    "-device",	 "virtio-blk-device,drive=rootfs,serial=rootfs",
    "-add-fd",	 "fd=8,set=6",
    "-blockdev", "driver=file,filename=/dev/fdset/6,node-name=state-file,read-only=off,discard=unmap",
    "-blockdev", "driver=raw,file=state-file,node-name=state,read-only=off",
    "-device",	 "virtio-blk-device,drive=state,serial=state",
    "-add-fd",	 "fd=9,set=7",
    "-blockdev", "driver=file,filename=/dev/fdset/7,node-name=image-file,read-only=on",
    "-blockdev", "driver=raw,file=image-file,node-name=image,read-only=on",
    "-device",	 "virtio-blk-device,drive=image,serial=image"};
static const char *const argv_tail[] = {"-device",  "virtio-serial-device",
					"-chardev", "socket,id=agent,fd=4,server=on,wait=off",
					"-device",  "virtserialport,chardev=agent,name=org.fcvm.agent",
					"-chardev", "socket,id=qmp,fd=3,server=on,wait=off",
					"-mon",	    "chardev=qmp,mode=control"};

/* argv == head, append, disks, extra (n_extra), tail */
static void check_exact(const char **argv, int n, const char *append, const char *const *extra, size_t n_extra)
{
	const char *want[QEMU_ARGV_MAX];
	size_t k = 0;
	for (size_t i = 0; i < sizeof(argv_common_head) / sizeof(argv_common_head[0]); i++)
		want[k++] = argv_common_head[i];
	want[k++] = append;
	for (size_t i = 0; i < sizeof(argv_disks) / sizeof(argv_disks[0]); i++)
		want[k++] = argv_disks[i];
	for (size_t i = 0; i < n_extra; i++)
		want[k++] = extra[i];
	for (size_t i = 0; i < sizeof(argv_tail) / sizeof(argv_tail[0]); i++)
		want[k++] = argv_tail[i];
	for (int i = 0; i < n && (size_t)i < k; i++)
		CHECK_STR(argv[i], want[i]);
	CHECK_EQ(n, k);
}

TEST(exact_command_line_without_network)
{
	struct vm_config c = {.cpus = 1, .mem_mib = 512, .accel = ACCEL_KVM};
	const char *argv[QEMU_ARGV_MAX];
	char buf[8192];
	int n = build(&c, argv, buf, sizeof(buf));
	check_exact(argv, n, APPEND_HEAD "fcvm.net=none", NULL, 0);
}

static const struct guest_net guest_net = {.on = true,
					   .addr = "10.254.254.2",
					   .prefix = 30,
					   .gw = "10.254.254.1",
					   .mac = "02:fc:00:00:00:02",
					   .dns = "10.0.2.3"};

TEST(exact_command_line_with_network)
{
	struct vm_config c = {.cpus = 1, .mem_mib = 512, .accel = ACCEL_KVM, .net = guest_net};
	const char *argv[QEMU_ARGV_MAX];
	char buf[8192];
	/* the tap is the 10th fd: 3 + 9 */
	CHECK_EQ(VMM_FD_TAP(&c), 12);
	static const char *const nic[] = {"-netdev", "tap,id=net0,fd=12", "-device",
					  "virtio-net-device,netdev=net0,mac=02:fc:00:00:00:02"};
	int n = build(&c, argv, buf, sizeof(buf));
	check_exact(argv, n, APPEND_HEAD "fcvm.net=10.254.254.2/30,10.254.254.1,02:fc:00:00:00:02,10.0.2.3", nic, 4);

	/* no DNS server: the field is left out */
	c.net.dns[0] = 0;
	n = build(&c, argv, buf, sizeof(buf));
	check_exact(argv, n, APPEND_HEAD "fcvm.net=10.254.254.2/30,10.254.254.1,02:fc:00:00:00:02", nic, 4);
}

/* A clone: the template mapped private (copy-on-write), the device state after it, the tap
 * last, and QEMU waiting for migrate-incoming. */
TEST(exact_command_line_of_a_clone)
{
	struct vm_config c = {.cpus = 1, .mem_mib = 512, .accel = ACCEL_KVM, .net = guest_net, .restore = true};
	const char *argv[QEMU_ARGV_MAX];
	char buf[8192];
	CHECK_EQ(VMM_FD_STATE, 12);
	CHECK_EQ(VMM_FD_DISK_BASE, 13);
	CHECK_EQ(VMM_FD_TAP(&c), 14);
	int n = build(&c, argv, buf, sizeof(buf));
	CHECK(n > 20);
	CHECK_STR(argv[11], "memory-backend-file,id=ram,size=512M,mem-path=/proc/self/fd/11,share=off");
	CHECK_STR(argv[n - 2], "-incoming");
	CHECK_STR(argv[n - 1], "defer");
	bool tap = false;
	for (int i = 0; i < n; i++)
		tap |= strcmp(argv[i], "tap,id=net0,fd=14") == 0;
	CHECK(tap);

	/* its disk a qcow2 overlay: the snapshot's disk a read-only node of its own beneath it */
	c.disk_overlay = true;
	n = build(&c, argv, buf, sizeof(buf));
	int base = -1, state = -1;
	for (int i = 0; i < n; i++) {
		if (strcmp(argv[i], "driver=raw,file=base-file,node-name=base,read-only=on") == 0)
			base = i;
		if (strcmp(argv[i], "driver=qcow2,file=state-file,backing=base,node-name=state,read-only=off") == 0)
			state = i;
	}
	CHECK(base > 0 && state > base);
	CHECK_STR(argv[base - 4], "fd=13,set=11");
}

/* Whatever is not a dotted quad or a MAC would be pasted into QEMU's and the kernel's command
 * lines: refused. */
TEST(malformed_network_is_refused)
{
	static const char *const bad_ip[] = {
	    "",	   "10.254.254", "10.254.254.256", "10.254.254.02",  "10.254.254.2 x", "10.254.254.2,1",
	    "::1", "a.b.c.d",	 " 10.254.254.2",  "10.254.254.2/30"};
	static const char *const bad_mac[] = {"",
					      "02:fc:00:00:00",
					      "02:fc:00:00:00:0g",
					      "02-fc-00-00-00-02",
					      "02:fc:00:00:00:0,",
					      "02:fc:00:00:0:002",
					      "02:fc:00:00:00:2 "};
	const char *argv[QEMU_ARGV_MAX];
	char buf[8192];
	struct vm_config c = {.cpus = 1, .mem_mib = 512, .accel = ACCEL_KVM, .net = guest_net};
	CHECK(build(&c, argv, buf, sizeof(buf)) > 0);
	for (size_t i = 0; i < sizeof(bad_ip) / sizeof(bad_ip[0]); i++) {
		for (int field = 0; field < 3; field++) {
			c.net = guest_net;
			char *dst = field == 0 ? c.net.addr : field == 1 ? c.net.gw : c.net.dns;
			snprintf(dst, 16, "%s", bad_ip[i]);
			if (field == 2 && !bad_ip[i][0])
				continue; /* an empty DNS is "none" */
			CHECK_EQ(build(&c, argv, buf, sizeof(buf)), -1);
		}
	}
	for (size_t i = 0; i < sizeof(bad_mac) / sizeof(bad_mac[0]); i++) {
		c.net = guest_net;
		snprintf(c.net.mac, sizeof(c.net.mac), "%s", bad_mac[i]);
		CHECK_EQ(build(&c, argv, buf, sizeof(buf)), -1);
	}
	/* unterminated fields */
	c.net = guest_net;
	memset(c.net.addr, '1', sizeof(c.net.addr));
	CHECK_EQ(build(&c, argv, buf, sizeof(buf)), -1);
	c.net = guest_net;
	memset(c.net.mac, 'a', sizeof(c.net.mac));
	CHECK_EQ(build(&c, argv, buf, sizeof(buf)), -1);
	unsigned prefixes[] = {0, 33, 1000};
	for (size_t i = 0; i < 3; i++) {
		c.net = guest_net;
		c.net.prefix = prefixes[i];
		CHECK_EQ(build(&c, argv, buf, sizeof(buf)), -1);
	}
	/* off: the fields are not looked at */
	c.net.on = false;
	CHECK(build(&c, argv, buf, sizeof(buf)) > 0);
}
