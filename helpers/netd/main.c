/* fcvm-netd: each VM's network (docs/networking.md): its user and network namespace, tap,
 * veth pair, addresses, routes and nftables state, over netlink only. Started by the launcher
 * with its channel to the supervisor on fd 3. Every request is checked here: ports against
 * policy/netd.policy's settings and the host, interface names against netd's own records. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "helpers/common/helper.h"
#include "helpers/netd/netd.h"

static struct netd netd;

static void set_addr(struct pmsg *rep, const char *field, struct in_addr a)
{
	char buf[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a, buf, sizeof(buf));
	prec_set_str(rep, &rep->body, field, buf);
}

static void refuse(struct pmsg *rep, int rc, const char *vm, const char *why)
{
	/* E2BIG: too many ports, the caller's mistake here (elsewhere a list too long to send) */
	int code = rc == -E2BIG ? PE_INVALID : proto_code_from_errno(rc);
	if (code == PE_INTERNAL)
		log_err("vm %s: %s: %s", vm, why, strerror(-rc));
	else
		log_audit("refused for vm %s: %s", vm, why);
	pmsg_set_error(rep, code, "%s%s%s", why, code == PE_INTERNAL ? ": " : "",
		       code == PE_INTERNAL ? strerror(-rc) : "");
}

static void serve_create(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	const char *vm = prec_str(&req->body, "vm"), *mode = prec_str(&req->body, "mode");
	struct pub_port ports[NETD_PORTS_MAX];
	struct netd_made m;
	char why[256] = "";
	size_t np = 0;
	bool bridged = strcmp(mode, "bridged") == 0;
	int rc;

	if (!bridged && strcmp(mode, "rootless") != 0) {
		snprintf(why, sizeof(why), "network mode '%s': bridged or rootless", mode);
		return refuse(rep, -EINVAL, vm, why);
	}
	if (bridged && !netd.system) {
		snprintf(why, sizeof(why), "bridged networks need a system-mode fcvm (rootless: --network rootless)");
		return refuse(rep, -EPERM, vm, why);
	}
	if ((rc = netd_ports_parse(&netd, &req->body, ports, &np, why, sizeof(why))) < 0 ||
	    (rc = netd_create(&netd, vm, bridged, ports, np, &m, why, sizeof(why))) < 0)
		return refuse(rep, rc, vm, why);
	if (bridged) {
		prec_set_str(rep, &rep->body, "host_if", m.host_if);
		set_addr(rep, "host_addr", m.host_addr);
		set_addr(rep, "ns_addr", m.ns_addr);
	} else {
		prec_set_str(rep, &rep->body, "dns", "10.0.2.3"); /* pasta's forwarder (docs/networking.md) */
	}
	set_addr(rep, "guest_addr", netd.guest);
	prec_set_uint(rep, &rep->body, "guest_prefix", netd.guest_prefix);
	set_addr(rep, "guest_gw", netd.guest_gw);
	prec_set_str(rep, &rep->body, "guest_mac", NETD_GUEST_MAC);
	pmsg_add_fd(rep, m.tap_fd);
	pmsg_add_fd(rep, m.netns_fd);
	pmsg_add_fd(rep, m.userns_fd);
	log_info("vm %s: %s network%s%s, %zu published port(s)", vm, mode, bridged ? " on " : "",
		 bridged ? m.host_if : "", np);
}

static void serve_destroy(struct helper_ctx *h, const struct pmsg *req, struct pmsg *rep)
{
	const char *vm = prec_str(&req->body, "vm");
	char why[256] = "";
	int rc = netd_destroy(&netd, vm, prec_str(&req->body, "host_if"), why, sizeof(why));
	if (rc < 0)
		refuse(rep, rc, vm, why);
}

static int start(struct helper_ctx *h)
{
	int rc = netd_init(&netd, h->mode, h->instance);
	if (rc < 0)
		return rc;
	/* what a netd before this one made for VMs that are gone */
	if ((rc = netd_reconcile(&netd)) < 0)
		log_err("reconcile: %s", strerror(-rc));
	return 0;
}

static const struct helper_op ops[] = {
    {OP_NET_CREATE, serve_create},
    {OP_NET_DESTROY, serve_destroy},
};

int main(int argc, char **argv)
{
	return helper_main("netd", &policy_netd, ops, sizeof(ops) / sizeof(ops[0]), start, argc, argv);
}
