/* Firecracker's API requests (fc_api.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "supervisor/fc_api.h"

bool fc_id_ok(const char *id)
{
	if (!id || !*id || strlen(id) > 32)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

/* A request with j as its body (j is consumed); 0 or -1. */
static int make(struct fc_request *r, const char *method, json_t *j, const char *path)
{
	memset(r, 0, sizeof(*r));
	r->method = method;
	snprintf(r->path, sizeof(r->path), "%s", path);
	r->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return j && !r->body ? -1 : 0;
}

void fc_request_free(struct fc_request *r)
{
	free(r->body);
	r->body = NULL;
}

int fc_boot_requests(const struct fc_vm *vm, struct fc_request *out, size_t max)
{
	const struct vm_config *c = vm->config;
	char cmdline[VMCONFIG_CMDLINE_MAX];
	size_t n = 0;
	if (!vm->kernel || vm->ndrives > FC_DRIVES_MAX || max < 4 + vm->ndrives + 2 ||
	    vmconfig_cmdline(c, VMM_KIND_FIRECRACKER, cmdline, sizeof(cmdline)) < 0 || (c->net.on && !vm->tap) ||
	    (vm->vsock_uds && vm->vsock_cid < 3))
		return -1;
	for (unsigned i = 0; i < vm->ndrives; i++)
		if (!fc_id_ok(vm->drive[i].id) || !vm->drive[i].path)
			return -1;
	int rc =
	    make(&out[n++], "PUT",
		 json_pack("{s:i, s:i, s:b}", "vcpu_count", (int)c->cpus, "mem_size_mib", (int)c->mem_mib, "smt", 0),
		 "/machine-config");
	json_t *boot = json_pack("{s:s, s:s}", "kernel_image_path", vm->kernel, "boot_args", cmdline);
	if (boot && vm->initrd)
		json_object_set_new(boot, "initrd_path", json_string(vm->initrd));
	rc |= make(&out[n++], "PUT", boot, "/boot-source");
	for (unsigned i = 0; i < vm->ndrives; i++) {
		char path[48];
		snprintf(path, sizeof(path), "/drives/%s", vm->drive[i].id);
		rc |= make(&out[n++], "PUT",
			   json_pack("{s:s, s:b, s:s, s:b}", "drive_id", vm->drive[i].id, "is_root_device", 0,
				     "path_on_host", vm->drive[i].path, "is_read_only", vm->drive[i].read_only),
			   path);
	}
	if (c->net.on)
		rc |= make(
		    &out[n++], "PUT",
		    json_pack("{s:s, s:s, s:s}", "iface_id", "eth0", "host_dev_name", vm->tap, "guest_mac", c->net.mac),
		    "/network-interfaces/eth0");
	if (vm->vsock_uds)
		rc |=
		    make(&out[n++], "PUT",
			 json_pack("{s:i, s:s}", "guest_cid", (int)vm->vsock_cid, "uds_path", vm->vsock_uds), "/vsock");
	rc |= make(&out[n++], "PUT", json_pack("{s:s}", "action_type", "InstanceStart"), "/actions");
	if (rc) {
		for (size_t i = 0; i < n; i++)
			fc_request_free(&out[i]);
		return -1;
	}
	return (int)n;
}

int fc_pause_request(bool pause, struct fc_request *out)
{
	return make(out, "PATCH", json_pack("{s:s}", "state", pause ? "Paused" : "Resumed"), "/vm");
}

int fc_snapshot_create_request(const char *state_path, const char *mem_path, struct fc_request *out)
{
	if (!state_path || !mem_path)
		return -1;
	return make(out, "PUT",
		    json_pack("{s:s, s:s, s:s}", "snapshot_type", "Full", "snapshot_path", state_path, "mem_file_path",
			      mem_path),
		    "/snapshot/create");
}

int fc_snapshot_load_request(const char *state_path, const char *mem, bool uffd, struct fc_request *out)
{
	if (!state_path || !mem)
		return -1;
	return make(out, "PUT",
		    json_pack("{s:s, s:{s:s, s:s}, s:b}", "snapshot_path", state_path, "mem_backend", "backend_type",
			      uffd ? "Uffd" : "File", "backend_path", mem, "resume_vm", 1),
		    "/snapshot/load");
}
