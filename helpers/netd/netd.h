/* netd's state and its acts: a VM network made (vmnet.c) from validated ports (ports.c).
 * The kernel holds netd's records: each host link's alias names the instance and VM it was
 * made for, and the instance's nftables maps hold the published ports, so a restarted netd
 * knows everything it made without a file of its own. */
#ifndef FCVM_NETD_H
#define FCVM_NETD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "helpers/netd/nft.h"
#include "proto/proto.h"

#define NETD_PORTS_MAX	 16
#define NETD_HOST_PREFIX "fcvmh"    /* host ends of VM veths: fcvmh<slot> */
#define NETD_NS_VETH	 "fcvm0"    /* the namespace's end */
#define NETD_TAP	 "fcvmtap0" /* the VM's tap, inside the namespace */
#define NETD_PASTA_IF	 "fcvmp0"   /* rootless: pasta's interface (docs/networking.md) */
#define NETD_GUEST_MAC	 "02:fc:00:00:00:02"

struct netd {
	bool system;	       /* bridged networks are possible (CAP_NET_ADMIN on the host) */
	char table[24];	       /* fcvm_<instance> */
	char alias_prefix[24]; /* fcvm:<instance>: */
	struct in_addr pool;   /* VM /30s (policy) */
	unsigned pool_prefix, nslots, next_slot;
	unsigned port_min, port_max;	/* host ports a VM may publish (policy) */
	struct in_addr guest, guest_gw; /* inside every VM namespace (docs/networking.md) */
	unsigned guest_prefix;
	struct rtnl *host_rtnl; /* system mode only */
	struct nft *host_nft;	/* system mode only */
};

/* Fill n from the policy's settings and mode; open the host sockets in system mode. */
int netd_init(struct netd *n, const char *mode, const char *instance);

/* Check a request's ports against the policy and the host, filling out[] (count in *np).
 * On refusal: -errno with why[] saying what (for the error reply and the audit line). */
int netd_ports_parse(const struct netd *n, const struct precord *req, struct pub_port *out, size_t *np, char *why,
		     size_t whylen);
/* "[IP:]HOST:GUEST/PROTO" */
void netd_port_text(const struct pub_port *p, char *buf, size_t len);

struct netd_made {
	char host_if[16];
	struct in_addr host_addr, ns_addr; /* bridged */
	int tap_fd, netns_fd, userns_fd;
};
int netd_create(struct netd *n, const char *vm, bool bridged, const struct pub_port *p, size_t np,
		struct netd_made *out, char *why, size_t whylen);
/* host_if NULL: a rootless network, which has nothing on the host. */
int netd_destroy(struct netd *n, const char *vm, const char *host_if, char *why, size_t whylen);
/* Remove published ports whose VM link is gone; drop the table when no VM is left. */
int netd_reconcile(struct netd *n);

#endif
