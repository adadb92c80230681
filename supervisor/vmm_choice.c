/* --vmm: which VMM runs a VM (vmm.h). auto takes Firecracker where its binary is installed
 * and hardware KVM is usable (it has no software emulation), else QEMU; asked for where it
 * cannot run, Firecracker is refused at once, naming why. */
#include <stdio.h>
#include <string.h>

#include "supervisor/supervisor.h"
#include "supervisor/vmm.h"

/* Why Firecracker cannot run a VM here, or NULL. */
static const char *firecracker_unavailable(const struct supervisor *s)
{
	if (!s->firecracker_installed)
		return "Firecracker is not installed (no firecracker binary in /usr/bin or /usr/local/bin)";
	if (!s->kvm_usable)
		return "Firecracker needs hardware KVM (kvm_intel or kvm_amd), which this host has not";
	/* the API client and its requests exist (fc_api.c, fc_http.c); starting the jailed
	 * firecracker process does not yet */
	return "fcvm cannot start Firecracker yet: its launcher side (spawning and jailing it) is not built";
}

int vmm_choose(const struct supervisor *s, const char *asked, enum vmm_kind *kind, char *why, size_t n)
{
	if (!asked || strcmp(asked, "auto") == 0) {
		*kind = firecracker_unavailable(s) ? VMM_KIND_QEMU : VMM_KIND_FIRECRACKER;
		return PE_OK;
	}
	if (strcmp(asked, "qemu") == 0) {
		*kind = VMM_KIND_QEMU;
		return PE_OK;
	}
	if (strcmp(asked, "firecracker") != 0) {
		snprintf(why, n, "--vmm must be auto, qemu or firecracker, not '%s'", asked);
		return PE_INVALID;
	}
	const char *no = firecracker_unavailable(s);
	if (no) {
		snprintf(why, n, "--vmm firecracker: %s; use --vmm qemu", no);
		return PE_UNAVAILABLE;
	}
	*kind = VMM_KIND_FIRECRACKER;
	return PE_OK;
}

const char *vmm_kind_name(enum vmm_kind k)
{
	return k == VMM_KIND_FIRECRACKER ? "firecracker" : "qemu";
}
