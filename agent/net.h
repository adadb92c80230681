/* The guest's network from the kernel command line's fcvm.net= (docs/networking.md, "Guest
 * side"): lo and the virtio NIC up with the address and default route, /etc/resolv.conf and
 * /etc/hosts on a tmpfs. */
#ifndef FCVM_AGENT_NET_H
#define FCVM_AGENT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>

struct net_spec {
	struct in_addr addr, gw, dns;
	unsigned prefix;
	bool has_dns;
	char mac[18]; /* lower case, as the kernel prints it */
};

/* fcvm.net's value: ADDR/PREFIX,GW,MAC[,DNS] or none. Returns 1 (a network, n filled), 0
 * (none), -1 (malformed: why says what, nothing is to be configured). */
int net_parse(const char *text, struct net_spec *n, char *why, size_t whylen);

/* The interface whose MAC is n->mac, else the first one that is not lo. */
bool net_find_if(const struct net_spec *n, char *ifname, size_t len);

/* lo up; ifname up with n's address and a default route via n's gateway. 0 or -1 (logged). */
int net_configure(const struct net_spec *n, const char *ifname);

/* resolv.conf and hosts in dir (made if missing). 0 or -1 (logged). */
int net_write_etc(const struct net_spec *n, const char *dir, const char *hostname);

/* PID 1: the whole guest side for fcvm.net's value (NULL: not given, i.e. none). Sets
 * ag.net_on when the NIC is configured; a failure is logged and leaves the network off. */
void net_boot(const char *spec, const char *hostname);

/* Test mode (--net-config): spec on ifname (NULL: found as in the guest), the files in
 * etc_dir (NULL: none). Returns the exit code, 0 or 1. */
int net_test(const char *spec, const char *ifname, const char *etc_dir);

#endif
