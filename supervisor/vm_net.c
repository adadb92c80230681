/* A VM's network, as the supervisor sees it (docs/networking.md): the mode and ports a client
 * asked for, netd's net_create for the namespace and tap, pasta from the launcher for a
 * rootless network, and net_destroy for what is left on the host once the VMM is gone. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "supervisor/client.h"
#include "supervisor/supervisor.h"
#include "supervisor/vm.h"

int vm_net_parse(struct vm *vm, struct pmsg *net_req, const struct precord *req, char *err, size_t n)
{
	const char *mode = prec_str(req, "network");
	bool system = vm->sup->inst->system_mode;
	if (!mode)
		mode = system ? "bridged" : "rootless";
	if (strcmp(mode, "bridged") != 0 && strcmp(mode, "rootless") != 0 && strcmp(mode, "none") != 0) {
		snprintf(err, n, "--network must be bridged, rootless or none (got '%s')", mode);
		return -EINVAL;
	}
	if (strcmp(mode, "bridged") == 0 && !system) {
		snprintf(err, n, "--network bridged needs the system fcvm (root); use --network rootless");
		return -EPERM;
	}
	const struct pval *ports = prec_get(req, "ports");
	if (strcmp(mode, "none") == 0 && ports && ports->recs.n) {
		snprintf(err, n, "--publish needs a network: --network bridged or rootless");
		return -EINVAL;
	}
	snprintf(vm->network, sizeof(vm->network), "%s", mode);
	memset(&vm->net, 0, sizeof(vm->net));
	if (strcmp(mode, "none") == 0)
		return 0;
	static const char *const fields[] = {"ports"};
	pmsg_init(net_req, PK_REQUEST, OP_NET_CREATE, 0);
	prec_set_str(net_req, &net_req->body, "vm", vm->id);
	prec_set_str(net_req, &net_req->body, "mode", mode);
	if (prec_copy_fields(net_req, &net_req->body, req, fields, 1) < 0) {
		pmsg_free(net_req);
		snprintf(err, n, "too many published ports");
		return -E2BIG;
	}
	for (uint32_t i = 0; ports && i < ports->recs.n && i < VM_PORTS_MAX; i++) {
		const struct precord *p = &ports->recs.v[i];
		const char *ip = prec_str(p, "host_ip");
		uint64_t hp = 0, gp = 0;
		prec_uint(p, "host_port", &hp);
		prec_uint(p, "guest_port", &gp);
		snprintf(vm->net.ports[vm->net.nports++], sizeof(vm->net.ports[0]), "%s%s%u:%u/%s", ip ? ip : "",
			 ip ? ":" : "", (unsigned)hp, (unsigned)gp, prec_str(p, "proto"));
	}
	return 0;
}

static int copy_str(char *dst, size_t n, const char *src)
{
	return snprintf(dst, n, "%s", src ? src : "") >= (int)n ? -1 : 0;
}

int vm_net_made(struct vm *vm, struct pmsg *rep, int fds[3])
{
	struct guest_net *q = &vm->qc.net;
	uint64_t prefix = 0;
	memset(q, 0, sizeof(*q));
	if (copy_str(q->addr, sizeof(q->addr), prec_str(&rep->body, "guest_addr")) < 0 ||
	    copy_str(q->gw, sizeof(q->gw), prec_str(&rep->body, "guest_gw")) < 0 ||
	    copy_str(q->mac, sizeof(q->mac), prec_str(&rep->body, "guest_mac")) < 0 ||
	    copy_str(q->dns, sizeof(q->dns), prec_str(&rep->body, "dns")) < 0 ||
	    copy_str(vm->net.host_if, sizeof(vm->net.host_if), prec_str(&rep->body, "host_if")) < 0 ||
	    copy_str(vm->net.host_addr, sizeof(vm->net.host_addr), prec_str(&rep->body, "host_addr")) < 0 ||
	    !prec_uint(&rep->body, "guest_prefix", &prefix))
		return -EINVAL;
	q->on = true;
	q->prefix = (unsigned)prefix;
	snprintf(vm->net.guest_ip, sizeof(vm->net.guest_ip), "%s", q->addr);
	vm->net.made = true;
	for (unsigned i = 0; i < 3; i++)
		fds[i] = pmsg_take_fd(rep, i);
	return 0;
}

void vm_net_pasta(struct vm *vm, const struct pmsg *net_req, int userns_fd, int netns_fd, peer_reply_cb cb, void *arg)
{
	static const char *const fields[] = {"ports"};
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_PASTA_SPAWN, 0);
	prec_set_str(&req, &req.body, "vm", vm->name);
	prec_set_uint(&req, &req.body, "vmm_pid", (uint64_t)vm->pid);
	prec_copy_fields(&req, &req.body, &net_req->body, fields, 1);
	pmsg_add_fd(&req, userns_fd);
	pmsg_add_fd(&req, netns_fd);
	peer_call(&vm->sup->launcher, &req, cb, arg);
	pmsg_free(&req);
}

static void on_destroyed(struct pmsg *rep, void *arg)
{
	char *what = arg;
	if (rep->err_code != PE_OK)
		log_err("%s: netd could not remove its network: %s", what, rep->err_msg ? rep->err_msg : "?");
	free(what);
}

void vm_net_release(struct vm *vm)
{
	if (!vm->net.made)
		return;
	vm->net.made = false;
	/* rootless: the namespace and pasta went with the VMM; bridged: the host link went with
	 * the namespace, and netd removes the published ports (and the link, were it still there) */
	if (!vm->net.host_if[0])
		return;
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_NET_DESTROY, 0);
	prec_set_str(&req, &req.body, "vm", vm->id);
	prec_set_str(&req, &req.body, "host_if", vm->net.host_if);
	helper_call(vm->sup, HELPER_NETD, &req, on_destroyed, strdup(vm->name));
	pmsg_free(&req);
}

void vm_net_list(const struct vm *vm, struct pmsg *rep, struct precord *r)
{
	if (vm->net.guest_ip[0])
		prec_set_str(rep, r, "guest_ip", vm->net.guest_ip);
	if (vm->net.host_addr[0])
		prec_set_str(rep, r, "host_addr", vm->net.host_addr);
	for (unsigned i = 0; i < vm->net.nports; i++)
		prec_add_str(rep, r, "ports", vm->net.ports[i]);
}
