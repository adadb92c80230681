#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "common/vmconfig.h"

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

bool vmconfig_net_ok(const struct guest_net *n)
{
	return valid_ipv4(n->addr, sizeof(n->addr)) && n->prefix >= 1 && n->prefix <= 32 &&
	       valid_ipv4(n->gw, sizeof(n->gw)) && valid_mac(n->mac, sizeof(n->mac)) &&
	       (n->dns[0] == 0 || valid_ipv4(n->dns, sizeof(n->dns)));
}

int vmconfig_put(struct pmsg *m, const struct vm_config *c)
{
	struct precord *b = &m->body;
	int rc = prec_set_uint(m, b, "cpus", c->cpus) | prec_set_uint(m, b, "mem", c->mem_mib) |
		 prec_set_str(m, b, "accel", accel_name(c->accel)) | prec_set_bool(m, b, "debug", c->debug_console) |
		 (c->restore ? prec_set_bool(m, b, "restore", true) : 0) |
		 (c->disk_overlay ? prec_set_bool(m, b, "disk_overlay", true) : 0);
	if (c->net.on) {
		rc |= prec_set_str(m, b, "guest_addr", c->net.addr) |
		      prec_set_uint(m, b, "guest_prefix", c->net.prefix) | prec_set_str(m, b, "guest_gw", c->net.gw) |
		      prec_set_str(m, b, "guest_mac", c->net.mac);
		if (c->net.dns[0])
			rc |= prec_set_str(m, b, "dns", c->net.dns);
	}
	return rc ? -1 : 0;
}

static bool copy_field(char *dst, size_t len, const char *src)
{
	return src && snprintf(dst, len, "%s", src) < (int)len;
}

int vmconfig_get(const struct pmsg *m, struct vm_config *c, char *err, size_t len)
{
	const struct precord *b = &m->body;
	uint64_t cpus = 0, mem = 0, prefix = 0;
	const char *accel = prec_str(b, "accel"), *addr = prec_str(b, "guest_addr");
	memset(c, 0, sizeof(*c));
	prec_bool(b, "debug", &c->debug_console);
	prec_bool(b, "restore", &c->restore);
	prec_bool(b, "disk_overlay", &c->disk_overlay);
	if (c->disk_overlay && !c->restore) {
		snprintf(err, len, "a disk overlay comes only with a clone's restore");
		return -1;
	}
	if (!prec_uint(b, "cpus", &cpus) || !prec_uint(b, "mem", &mem) || !accel) {
		snprintf(err, len, "cpus, mem and accel are required");
		return -1;
	}
	c->cpus = (unsigned)cpus;
	c->mem_mib = (unsigned)mem;
	if (strcmp(accel, "kvm") != 0 && strcmp(accel, "tcg") != 0) {
		snprintf(err, len, "accel must be kvm or tcg");
		return -1;
	}
	c->accel = strcmp(accel, "kvm") == 0 ? ACCEL_KVM : ACCEL_TCG;
	if (!addr)
		return 0;
	c->net.on = true;
	prec_uint(b, "guest_prefix", &prefix);
	c->net.prefix = (unsigned)prefix;
	const char *dns = prec_str(b, "dns");
	if (!copy_field(c->net.addr, sizeof(c->net.addr), addr) ||
	    !copy_field(c->net.gw, sizeof(c->net.gw), prec_str(b, "guest_gw")) ||
	    !copy_field(c->net.mac, sizeof(c->net.mac), prec_str(b, "guest_mac")) ||
	    (dns && !copy_field(c->net.dns, sizeof(c->net.dns), dns)) || !vmconfig_net_ok(&c->net)) {
		snprintf(err, len, "the guest network must be IPv4 addresses, a prefix and a MAC");
		return -1;
	}
	return 0;
}

int vmconfig_cmdline(const struct vm_config *c, enum vmm_kind kind, char *buf, size_t len)
{
	char tsc[48] = "", net[96] = "none";
	if (c->net.on) {
		if (!vmconfig_net_ok(&c->net))
			return -1;
		snprintf(net, sizeof(net), "%s/%u,%s,%s%s%s", c->net.addr, c->net.prefix, c->net.gw, c->net.mac,
			 c->net.dns[0] ? "," : "", c->net.dns);
	}
	if (c->tsc_khz)
		snprintf(tsc, sizeof(tsc), " tsc_early_khz=%lu", c->tsc_khz);
	/* Firecracker ends when the guest resets through the i8042: its keyboard stays */
	bool fc = kind == VMM_KIND_FIRECRACKER;
	int n = snprintf(buf, len,
			 "console=ttyS0 reboot=%s panic=%s %s cryptomgr.notests no_timer_check tsc=reliable%s "
			 "i8042.noaux %si8042.nopnp 8250.nr_uarts=1 pci=off mitigations=off init_on_alloc=0 "
			 "apparmor=0 audit=0 rodata=off fcvm.net=%s",
			 fc ? "k" : "t", fc ? "1" : "-1", c->debug_console ? "fcvm.debug=1" : "quiet", tsc,
			 fc ? "i8042.dumbkbd " : "i8042.nokbd ", net);
	return n > 0 && (size_t)n < len ? 0 : -1;
}
