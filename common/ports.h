/* Published ports, parsed and checked the same way by every process that acts on them:
 * netd (nftables DNAT, bridged) and the launcher (pasta's -t/-u, rootless). */
#ifndef FCVM_PORTS_H
#define FCVM_PORTS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

#define PORTS_MAX 16

struct pub_port {
	struct in_addr host_ip; /* INADDR_ANY: every local address of the host (127.0.0.1 too) */
	uint16_t host_port, guest_port;
	uint8_t proto; /* IPPROTO_TCP | IPPROTO_UDP */
};

/* "LO-HI" (a policy's `set ports`): 0, or -EINVAL. */
int ports_range(const char *s, unsigned *lo, unsigned *hi);
/* The "ports" records of req: protocol tcp|udp, host_ip an IPv4 address, host ports within
 * lo..hi, none twice. Fills out[] (count in *np); 0 or -errno with the reason in why. */
int ports_parse(const struct precord *req, unsigned lo, unsigned hi, struct pub_port *out, size_t *np, char *why,
		size_t whylen);
/* "[IP:]HOST:GUEST/PROTO" */
void port_text(const struct pub_port *p, char *buf, size_t len);
const char *port_proto_name(uint8_t proto);

#endif
