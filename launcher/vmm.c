/* vmm_spawn: a VM's QEMU, from a typed configuration the launcher checks against its policy
 * (vCPUs, memory, acceleration, the guest network's addresses) and turns into QEMU's
 * command line itself (qemu_argv.c). The supervisor chooses no argument; the fds' kinds
 * were checked by the protocol layer, their roles are fixed by position (common/vmconfig.h).
 * The spawner runs it as the VM slot's uid, jailed (vmm_jail.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "launcher/launcher.h"
#include "launcher/qemu_argv.h"

/* The guest's RAM memfd: exactly the memory asked for; a clone's template sealed for good
 * (QEMU 7.2 opens it read-write: only the seals keep the clones from changing it), a
 * booting VM's own unsealed (QEMU maps it shared). */
static int check_ram(const struct pmsg *req, const struct vm_config *c, struct pmsg *rep)
{
	struct stat st;
	int fd = req->fds[VFD_MEM], seals = fcntl(fd, F_GET_SEALS);
	if (fstat(fd, &st) < 0 || seals < 0 || (uint64_t)st.st_size != (uint64_t)c->mem_mib << 20) {
		launcher_refuse(rep, PE_INVALID, "VMM for %s: the RAM memfd is not of %u MiB",
				prec_str(&req->body, "vm"), c->mem_mib);
		return -1;
	}
	if (c->restore ? (seals & VMM_TEMPLATE_SEALS) != VMM_TEMPLATE_SEALS : (seals & F_SEAL_WRITE) != 0) {
		launcher_refuse(rep, PE_INVALID, "VMM for %s: the RAM memfd is %s", prec_str(&req->body, "vm"),
				c->restore ? "a template that is not sealed against writes" : "sealed against writes");
		return -1;
	}
	return 0;
}

static int check_config(const struct launcher *L, const struct pmsg *req, struct vm_config *c, struct pmsg *rep)
{
	char err[160];
	if (vmconfig_get(req, c, err, sizeof(err)) < 0) {
		launcher_refuse(rep, PE_INVALID, "VMM for %s: %s", prec_str(&req->body, "vm"), err);
		return -1;
	}
	enum proto_op op = req->op->id;
	if (c->net.on != (op == OP_VMM_SPAWN_NET || op == OP_VMM_RESTORE_NET)) {
		launcher_refuse(rep, PE_INVALID,
				"VMM for %s: a guest network comes with vmm_spawn_net/vmm_restore_net and its tap only",
				prec_str(&req->body, "vm"));
		return -1;
	}
	if (c->restore != (op == OP_VMM_RESTORE || op == OP_VMM_RESTORE_NET)) {
		launcher_refuse(rep, PE_INVALID, "VMM for %s: restore comes with vmm_restore and its state only",
				prec_str(&req->body, "vm"));
		return -1;
	}
	if (c->cpus > L->vmm_cpus_max || c->mem_mib > L->vmm_mem_max) {
		launcher_refuse(rep, PE_DENIED, "VMM for %s: %u vCPUs and %u MiB are beyond the policy's %u and %u",
				prec_str(&req->body, "vm"), c->cpus, c->mem_mib, L->vmm_cpus_max, L->vmm_mem_max);
		return -1;
	}
	if (c->accel == ACCEL_KVM && !L->kvm_usable) {
		launcher_refuse(rep, PE_DENIED, "VMM for %s: this host has no usable KVM", prec_str(&req->body, "vm"));
		return -1;
	}
	if (check_ram(req, c, rep) < 0)
		return -1;
	c->tsc_khz = L->tsc_khz;
	return 0;
}

pid_t vmm_spawn(struct launcher *L, unsigned slot, const struct pmsg *req, struct pmsg *rep)
{
	static struct spawn_order o;
	struct vm_config c;
	const char *argv[QEMU_ARGV_MAX];
	char buf[SPAWN_ARGS_BYTES], msg[256];
	if (L->ls->exe_fd[PROG_QEMU] < 0) {
		pmsg_set_error(rep, PE_NOT_FOUND,
			       "QEMU is not installed (qemu-system-x86_64 not found): apt-get install qemu-system-x86");
		return -1;
	}
	if (check_config(L, req, &c, rep) < 0)
		return -1;
	int n = qemu_build_argv(&c, argv, ARRAY_LEN(argv), buf, sizeof(buf));
	if (n <= 0) {
		pmsg_set_error(rep, PE_INTERNAL, "the QEMU command line does not fit");
		return -1;
	}
	memset(&o, 0, sizeof(o));
	o.prog = PROG_QEMU;
	o.slot = slot;
	o.nargs = (uint32_t)n;
	o.out_fd = VFD_CONSOLE;
	vmm_limits_for(&L->ls->cg, c.cpus, c.mem_mib, c.accel == ACCEL_TCG, &o.limits);
	/* argv's strings lie one after another in buf, in order */
	memcpy(o.args, buf, (size_t)(argv[n - 1] + strlen(argv[n - 1]) + 1 - buf));
	pid_t pid = spawner_ask(L->spawner, &o, req->fds, (unsigned)req->nfds, msg, sizeof(msg));
	if (pid < 0) {
		pmsg_set_error(rep, PE_INTERNAL, "the VMM did not start: %s", msg);
		return -1;
	}
	char limits[400];
	vmm_cgroup_describe(&L->ls->cg, &o.limits, limits, sizeof(limits));
	log_info("started the VMM of %s as pid %d (slot %u); limits: %s", prec_str(&req->body, "vm"), (int)pid, slot,
		 limits);
	prec_set_uint(rep, &rep->body, "pid", (uint64_t)pid);
	prec_set_str(rep, &rep->body, "limits", limits);
	gid_t gid;
	prec_set_uint(rep, &rep->body, "uid", vmm_ids(L->ls, slot, &gid));
	return pid;
}
