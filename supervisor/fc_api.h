/* The Firecracker backend's requests: what the supervisor sends to a Firecracker's API
 * socket to boot a VM, pause and resume it, snapshot it and load a snapshot (over userfaultfd
 * through uffdd, or from the memory file). Bodies are the swagger definitions of Firecracker's
 * API (../shared/reference/vmm-protocols.md §1), with only fields every release since 1.12
 * knows: Firecracker refuses unknown fields (deny_unknown_fields). Pure builders, no I/O
 * (fc_http.c sends them). */
#ifndef FCVM_SUP_FC_API_H
#define FCVM_SUP_FC_API_H

#include <stdbool.h>
#include <stddef.h>

#include "common/vmconfig.h"

/* One request: method, path and a JSON body (NULL: none), which the request owns. */
struct fc_request {
	const char *method; /* "PUT" | "PATCH" | "GET" */
	char path[64];
	char *body;
};

#define FC_DRIVES_MAX	4
#define FC_REQUESTS_MAX 12

/* What Firecracker is told about a VM: paths as Firecracker opens them inside its jail
 * (/proc/self/fd/N for the files it inherited, as QEMU is given them). */
struct fc_vm {
	const struct vm_config *config; /* vCPUs, memory, network, kernel arguments */
	const char *kernel, *initrd;
	struct {
		const char *id, *path;
		bool read_only;
	} drive[FC_DRIVES_MAX];
	unsigned ndrives;
	const char *tap;       /* the host tap netd made (config->net.on), by name in FC's netns */
	unsigned vsock_cid;    /* >= 3 */
	const char *vsock_uds; /* the hybrid vsock's host socket */
};

/* The boot sequence, in the order Firecracker's getting-started guide uses: machine-config,
 * boot-source, drives, network interface, vsock, InstanceStart. Returns how many requests
 * (<= max), or -1 (a malformed VM: an id Firecracker would refuse, no kernel). */
int fc_boot_requests(const struct fc_vm *vm, struct fc_request *out, size_t max);
/* PATCH /vm {"state": "Paused" | "Resumed"} */
int fc_pause_request(bool pause, struct fc_request *out);
/* PUT /snapshot/create: a full snapshot (the VM paused) into these two files. */
int fc_snapshot_create_request(const char *state_path, const char *mem_path, struct fc_request *out);
/* PUT /snapshot/load on a fresh Firecracker: memory from uffdd's socket (uffd true) or the
 * memory file (MAP_PRIVATE, copy-on-write), resumed. No network or vsock override: each
 * Firecracker has a network namespace and a root of its own, so a clone's tap and vsock
 * socket have the names its snapshot recorded (and overrides would need 1.12 and 1.16). */
int fc_snapshot_load_request(const char *state_path, const char *mem, bool uffd, struct fc_request *out);

void fc_request_free(struct fc_request *r);

/* A resource id in a path as Firecracker checks it: [A-Za-z0-9_]+. */
bool fc_id_ok(const char *id);

#endif
