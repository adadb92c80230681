/* A request's published ports, checked against netd's policy and the host before anything is
 * made: the port range is policy's, no port twice, the host address is one of this host's, and
 * nothing on the host already holds the port (tried with bind, then released). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers/netd/netd.h"

static const char *proto_name(uint8_t proto)
{
	return proto == IPPROTO_UDP ? "udp" : "tcp";
}

void netd_port_text(const struct nft_port *p, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN] = "";
	if (p->host_ip.s_addr != INADDR_ANY) {
		inet_ntop(AF_INET, &p->host_ip, ip, sizeof(ip));
		strcat(ip, ":");
	}
	snprintf(buf, len, "%s%u:%u/%s", ip, p->host_port, p->guest_port, proto_name(p->proto));
}

/* Can the host's port be had? 0, or -errno from bind (EADDRINUSE: taken; EADDRNOTAVAIL: not
 * an address of this host). */
static int try_bind(const struct nft_port *p)
{
	int type = p->proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	/* TIME_WAIT leftovers of earlier connections do not hold a port; a listener does */
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p->host_port), .sin_addr = p->host_ip};
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int parse_one(const struct netd *n, const struct precord *r, struct nft_port *p, char *why, size_t whylen)
{
	uint64_t hp = 0, gp = 0;
	const char *proto = prec_str(r, "proto"), *ip = prec_str(r, "host_ip");
	prec_uint(r, "host_port", &hp);
	prec_uint(r, "guest_port", &gp);
	memset(p, 0, sizeof(*p));
	p->host_port = (uint16_t)hp;
	p->guest_port = (uint16_t)gp;
	if (!proto || (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)) {
		snprintf(why, whylen, "protocol '%s': only tcp and udp", proto ? proto : "");
		return -EINVAL;
	}
	p->proto = strcmp(proto, "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP;
	if (ip && inet_pton(AF_INET, ip, &p->host_ip) != 1) {
		snprintf(why, whylen, "host address '%s' is not an IPv4 address", ip);
		return -EINVAL;
	}
	if (hp < n->port_min || hp > n->port_max) {
		snprintf(why, whylen, "host port %u is outside the ports VMs may publish (%u-%u)", p->host_port,
			 n->port_min, n->port_max);
		return -EPERM;
	}
	return 0;
}

int netd_ports_parse(const struct netd *n, const struct precord *req, struct nft_port *out, size_t *np, char *why,
		     size_t whylen)
{
	const struct pval *v = prec_get(req, "ports");
	size_t count = v ? v->recs.n : 0;
	char txt[48];
	*np = 0;
	if (count > NETD_PORTS_MAX) {
		snprintf(why, whylen, "at most %d published ports", NETD_PORTS_MAX);
		return -E2BIG;
	}
	for (size_t i = 0; i < count; i++) {
		int rc = parse_one(n, &v->recs.v[i], &out[i], why, whylen);
		if (rc < 0)
			return rc;
		/* one host port, one owner: the same port on another address is still the same
		 * port for an any-address entry */
		for (size_t j = 0; j < i; j++) {
			const struct nft_port *a = &out[j], *b = &out[i];
			if (a->host_port == b->host_port && a->proto == b->proto &&
			    (a->host_ip.s_addr == b->host_ip.s_addr || a->host_ip.s_addr == INADDR_ANY ||
			     b->host_ip.s_addr == INADDR_ANY)) {
				netd_port_text(b, txt, sizeof(txt));
				snprintf(why, whylen, "host port %u/%s is published twice (%s)", b->host_port,
					 proto_name(b->proto), txt);
				return -EINVAL;
			}
		}
		rc = try_bind(&out[i]);
		if (rc == -EADDRINUSE) {
			snprintf(why, whylen, "host port %u/%s is already in use on this host", out[i].host_port,
				 proto_name(out[i].proto));
			return -EADDRINUSE;
		}
		if (rc == -EADDRNOTAVAIL) {
			inet_ntop(AF_INET, &out[i].host_ip, txt, sizeof(txt));
			snprintf(why, whylen, "%s is not an address of this host", txt);
			return -EADDRNOTAVAIL;
		}
		/* EACCES: a privileged port netd itself may not bind; the range above decides */
		if (rc < 0 && rc != -EACCES) {
			snprintf(why, whylen, "host port %u/%s: %s", out[i].host_port, proto_name(out[i].proto),
				 strerror(-rc));
			return rc;
		}
	}
	*np = count;
	return 0;
}
