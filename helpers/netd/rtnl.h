/* rtnetlink through libmnl: just the acts netd needs, each one request with an ACK.
 * Every call returns 0 or -errno (the kernel's, from the ACK), never exits. */
#ifndef FCVM_NETD_RTNL_H
#define FCVM_NETD_RTNL_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>

struct rtnl;

struct rtnl *rtnl_open(void);	  /* NETLINK_ROUTE in the caller's network namespace */
struct rtnl *rtnl_fdopen(int fd); /* an already made socket (vmns); takes ownership */
void rtnl_close(struct rtnl *r);

/* A veth pair: `name` here, with IFLA_IFALIAS `alias` (netd's record of what it made), and
 * `peer` moved into the namespace peer_netns_fd at creation (IFLA_NET_NS_FD). NLM_F_EXCL:
 * -EEXIST when `name` exists. The kernel ignores an alias in a creation request, so the
 * alias is set by a second request; if that fails the pair is deleted again. */
int rtnl_veth_create(struct rtnl *r, const char *name, const char *alias, const char *peer, int peer_netns_fd);
int rtnl_link_index(struct rtnl *r, const char *name, unsigned *ifindex); /* -ENODEV if absent */
/* Set the link up, and (IFLA_AF_SPEC / AF_INET / IFLA_INET_CONF) its IPv4 forwarding and
 * route_localnet when asked. */
int rtnl_link_setup(struct rtnl *r, unsigned ifindex, bool forwarding, bool route_localnet);
int rtnl_addr_add(struct rtnl *r, unsigned ifindex, struct in_addr addr, unsigned prefix);
/* A route to dst/prefix (prefix 0: the default route) via gw. */
int rtnl_route_add(struct rtnl *r, struct in_addr dst, unsigned prefix, struct in_addr gw);
int rtnl_link_delete(struct rtnl *r, const char *name); /* -ENODEV if absent */

struct rtnl_link_info {
	char name[IF_NAMESIZE];
	char alias[128]; /* "" when none */
};
/* Calls cb for every link of the namespace (one RTM_GETLINK dump); a non-zero return from
 * cb stops the walk and is returned. */
int rtnl_link_dump(struct rtnl *r, int (*cb)(const struct rtnl_link_info *l, void *arg), void *arg);

#endif
