/* supervisor/qemu_argv.c: the QEMU command line for a VM, and the accelerator choice. */
#include <fcntl.h>
#include <sys/stat.h>

#include "supervisor/qemu_argv.h"
#include "tests/unit/check.h"

static int build(const struct qemu_config *c, const char **argv, char *buf, size_t buflen)
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
	struct qemu_config c = {.cpus = 2, .mem_mib = 768, .accel = ACCEL_TCG, .tsc_khz = 2600000};
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
	struct qemu_config c = {.cpus = 1, .mem_mib = 512, .accel = ACCEL_KVM};
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
	struct qemu_config c = {.cpus = 1, .mem_mib = 512, .accel = ACCEL_TCG};
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
