#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ports.h"

const char *port_proto_name(uint8_t proto)
{
	return proto == IPPROTO_UDP ? "udp" : "tcp";
}

void port_text(const struct pub_port *p, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN + 1] = "";
	if (p->host_ip.s_addr != INADDR_ANY) {
		inet_ntop(AF_INET, &p->host_ip, ip, sizeof(ip) - 1);
		strcat(ip, ":");
	}
	snprintf(buf, len, "%s%u:%u/%s", ip, p->host_port, p->guest_port, port_proto_name(p->proto));
}

int ports_range(const char *s, unsigned *lo, unsigned *hi)
{
	char *end;
	if (!s)
		return -EINVAL;
	unsigned long a = strtoul(s, &end, 10);
	if (*end != '-')
		return -EINVAL;
	unsigned long b = strtoul(end + 1, &end, 10);
	if (*end || a < 1 || b > 65535 || a > b)
		return -EINVAL;
	*lo = (unsigned)a;
	*hi = (unsigned)b;
	return 0;
}

static int parse_one(const struct precord *r, unsigned lo, unsigned hi, struct pub_port *p, char *why, size_t whylen)
{
	uint64_t hp = 0, gp = 0;
	const char *proto = prec_str(r, "proto"), *ip = prec_str(r, "host_ip");
	prec_uint(r, "host_port", &hp);
	prec_uint(r, "guest_port", &gp);
	memset(p, 0, sizeof(*p));
	if (!proto || (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)) {
		snprintf(why, whylen, "protocol '%s': only tcp and udp", proto ? proto : "");
		return -EINVAL;
	}
	p->proto = strcmp(proto, "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP;
	if (ip && inet_pton(AF_INET, ip, &p->host_ip) != 1) {
		snprintf(why, whylen, "host address '%s' is not an IPv4 address", ip);
		return -EINVAL;
	}
	if (hp < lo || hp > hi) {
		snprintf(why, whylen, "host port %u is outside the ports VMs may publish (%u-%u)", (unsigned)hp, lo,
			 hi);
		return -EPERM;
	}
	if (gp < 1 || gp > 65535) {
		snprintf(why, whylen, "guest port %u is not a port", (unsigned)gp);
		return -EINVAL;
	}
	p->host_port = (uint16_t)hp;
	p->guest_port = (uint16_t)gp;
	return 0;
}

int ports_parse(const struct precord *req, unsigned lo, unsigned hi, struct pub_port *out, size_t *np, char *why,
		size_t whylen)
{
	const struct pval *v = prec_get(req, "ports");
	size_t count = v ? v->recs.n : 0;
	char txt[48];
	*np = 0;
	if (count > PORTS_MAX) {
		snprintf(why, whylen, "at most %d published ports", PORTS_MAX);
		return -E2BIG;
	}
	for (size_t i = 0; i < count; i++) {
		int rc = parse_one(&v->recs.v[i], lo, hi, &out[i], why, whylen);
		if (rc < 0)
			return rc;
		/* one host port, one owner: the same port on another address is still the same
		 * port for an any-address entry */
		for (size_t j = 0; j < i; j++) {
			const struct pub_port *a = &out[j], *b = &out[i];
			if (a->host_port == b->host_port && a->proto == b->proto &&
			    (a->host_ip.s_addr == b->host_ip.s_addr || a->host_ip.s_addr == INADDR_ANY ||
			     b->host_ip.s_addr == INADDR_ANY)) {
				port_text(b, txt, sizeof(txt));
				snprintf(why, whylen, "host port %u/%s is published twice (%s)", b->host_port,
					 port_proto_name(b->proto), txt);
				return -EINVAL;
			}
		}
	}
	*np = count;
	return 0;
}
