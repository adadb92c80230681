/* A request's published ports, checked against netd's policy and the host before anything is
 * made: parsed as common/ports.c parses them for every process (the port range is policy's,
 * no port twice), then the host address is one of this host's and nothing on the host
 * already holds the port (tried with bind, then released). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers/netd/netd.h"

void netd_port_text(const struct pub_port *p, char *buf, size_t len)
{
	port_text(p, buf, len);
}

/* Can the host's port be had? 0, or -errno from bind (EADDRINUSE: taken; EADDRNOTAVAIL: not
 * an address of this host). */
static int try_bind(const struct pub_port *p)
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

int netd_ports_parse(const struct netd *n, const struct precord *req, struct pub_port *out, size_t *np, char *why,
		     size_t whylen)
{
	char txt[48];
	size_t count = 0;
	int rc = ports_parse(req, n->port_min, n->port_max, out, &count, why, whylen);
	*np = 0;
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < count; i++) {
		const char *proto = port_proto_name(out[i].proto);
		rc = try_bind(&out[i]);
		if (rc == -EADDRINUSE) {
			snprintf(why, whylen, "host port %u/%s is already in use on this host", out[i].host_port,
				 proto);
			return -EADDRINUSE;
		}
		if (rc == -EADDRNOTAVAIL) {
			inet_ntop(AF_INET, &out[i].host_ip, txt, sizeof(txt));
			snprintf(why, whylen, "%s is not an address of this host", txt);
			return -EADDRNOTAVAIL;
		}
		/* EACCES: a privileged port netd itself may not bind; the range above decides */
		if (rc < 0 && rc != -EACCES) {
			snprintf(why, whylen, "host port %u/%s: %s", out[i].host_port, proto, strerror(-rc));
			return rc;
		}
	}
	*np = count;
	return 0;
}
