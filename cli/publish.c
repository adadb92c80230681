/* --publish [IP:]HOST:GUEST[/tcp|udp], repeatable, comma lists allowed: parsed into the
 * vm_run request's port records. netd checks them again (range, host address, taken ports). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"

static int port_of(const char *s, uint64_t *out)
{
	return parse_uint(s, 65535, out) && *out >= 1 ? 0 : -1;
}

/* One "[IP:]HOST:GUEST[/PROTO]". */
static int add_one(struct pmsg *req, char *spec, const char *whole)
{
	char *proto = strchr(spec, '/'), *parts[3];
	int n = 0;
	uint64_t hp, gp;
	struct in_addr a;
	if (proto)
		*proto++ = '\0';
	for (char *p = spec, *colon; n < 3; p = colon + 1) {
		parts[n++] = p;
		if (!(colon = strchr(p, ':')))
			break;
		*colon = '\0';
	}
	if (proto && strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0) {
		fprintf(stderr, "fcvm: --publish %s: the protocol is tcp or udp, not '%s'\n", whole, proto);
		return -1;
	}
	if (n < 2 || strchr(parts[n - 1], ':') || port_of(parts[n - 2], &hp) < 0 || port_of(parts[n - 1], &gp) < 0 ||
	    (n == 3 && inet_pton(AF_INET, parts[0], &a) != 1)) {
		fprintf(stderr, "fcvm: --publish %s: want [IP:]HOST_PORT:GUEST_PORT[/tcp|udp], e.g. 8080:80\n", whole);
		return -1;
	}
	struct precord *r = prec_add_record(req, &req->body, "ports");
	if (!r) {
		fprintf(stderr, "fcvm: --publish: at most 16 ports\n");
		return -1;
	}
	if (n == 3)
		prec_set_str(req, r, "host_ip", parts[0]);
	prec_set_uint(req, r, "host_port", hp);
	prec_set_uint(req, r, "guest_port", gp);
	prec_set_str(req, r, "proto", proto ? proto : "tcp");
	return 0;
}

int cli_add_publish(struct pmsg *req, const char *arg)
{
	char buf[256];
	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf)) {
		fprintf(stderr, "fcvm: --publish: too long\n");
		return -1;
	}
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (add_one(req, tok, arg) < 0)
			return -1;
	return 0;
}
