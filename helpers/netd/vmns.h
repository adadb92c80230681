/* A VM's network namespace, made inside a fresh user namespace that netd owns, so that netd
 * needs CAP_NET_ADMIN on the host and nothing more: as the owner of that user namespace it has
 * every capability over the namespace, and none outside it.
 *
 * vmns_make clones a short-lived child with CLONE_NEWUSER|CLONE_NEWNET|CLONE_FILES (shared fd
 * table, copied memory: no stack juggling). The child, inside the new namespaces, turns on
 * IPv4 forwarding and route_localnet for the whole namespace (/proc/sys/net/ipv4/ip_forward,
 * conf/all/route_localnet: devices made later, pasta's, need them too), opens the fds below
 * into the shared table (the namespaces' own from its netlink socket: SIOCGSKNS,
 * NS_GET_USERNS; the tap from /dev/net/tun), reports them on a socketpair and exits; the
 * parent reaps it. /proc/sys/net and /dev/net/tun are all netd's root shows. Sockets stay bound to the namespace they
 * were made in, and the tap fd keeps the namespace alive after every other fd is closed: when the VMM exits, the
 * namespace, its tap and the veth pair into it disappear on their own. */
#ifndef FCVM_NETD_VMNS_H
#define FCVM_NETD_VMNS_H

#include <sched.h>
#include <signal.h>

/* The only clone netd's seccomp filter allows (policy/netd.policy). */
#define FCVM_VMNS_CLONE_FLAGS (CLONE_NEWUSER | CLONE_NEWNET | CLONE_FILES | SIGCHLD)

struct vmns {
	int userns_fd; /* nsfs: the user namespace that owns netns */
	int netns_fd;  /* nsfs: the VM's network namespace */
	int rtnl_fd;   /* NETLINK_ROUTE socket made inside netns */
	int nfnl_fd;   /* NETLINK_NETFILTER socket made inside netns */
	int tap_fd;    /* /dev/net/tun attached to tap `tap_name` in netns (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR) */
};

/* 0, or -errno with every fd closed (and set to -1). All fds are O_CLOEXEC. */
int vmns_make(struct vmns *ns, const char *tap_name);
/* Close every fd >= 0 and set it to -1. */
void vmns_close(struct vmns *ns);

#endif
