/* A VM's network, made and unmade (docs/networking.md). Every step is undone when a later one
 * fails; the namespace needs no undoing: it lives only through the fds made here, and the
 * veth pair into it goes with it. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/ports.h"
#include "helpers/netd/netd.h"
#include "helpers/netd/rtnl.h"
#include "helpers/netd/vmns.h"
#include "policy/sandbox.h"

static struct in_addr addr_plus(struct in_addr a, uint32_t k)
{
	struct in_addr r = {.s_addr = htonl(ntohl(a.s_addr) + k)};
	return r;
}

/* slot s owns pool + 4s .. pool + 4s + 3: the host end is +1, the namespace's end +2 */
static struct in_addr slot_host(const struct netd *n, unsigned s)
{
	return addr_plus(n->pool, 4 * s + 1);
}
static struct in_addr slot_ns(const struct netd *n, unsigned s)
{
	return addr_plus(n->pool, 4 * s + 2);
}

static int parse_cidr(const char *s, struct in_addr *a, unsigned *prefix)
{
	char buf[32];
	char *slash;
	unsigned long p;
	if (!s || snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf) || !(slash = strchr(buf, '/')))
		return -EINVAL;
	*slash = '\0';
	p = strtoul(slash + 1, NULL, 10);
	if (inet_pton(AF_INET, buf, a) != 1 || p < 8 || p > 30)
		return -EINVAL;
	*prefix = (unsigned)p;
	return 0;
}

/* "MIN-MAX" of ports */
int netd_init(struct netd *n, const char *mode, const char *instance)
{
	const char *ports = sandbox_setting(&policy_netd, "ports");
	memset(n, 0, sizeof(*n));
	n->system = strcmp(mode, "system") == 0;
	snprintf(n->table, sizeof(n->table), "fcvm_%s", instance);
	snprintf(n->alias_prefix, sizeof(n->alias_prefix), "fcvm:%s:", instance);
	if (parse_cidr(sandbox_setting(&policy_netd, "pool"), &n->pool, &n->pool_prefix) < 0 ||
	    parse_cidr(sandbox_setting(&policy_netd, "guest"), &n->guest, &n->guest_prefix) < 0 ||
	    ports_range(ports, &n->port_min, &n->port_max) < 0)
		return -EINVAL;
	n->guest_gw = addr_plus(n->guest, (uint32_t)-1); /* the tap: the address below the guest's */
	n->nslots = 1u << (32 - n->pool_prefix - 2);
	if (!n->system)
		return 0;
	if (!(n->host_rtnl = rtnl_open()) || !(n->host_nft = nft_open()))
		return -errno ? -errno : -EIO;
	return 0;
}

/* The namespace's side: addresses, routes and its nftables table, through the sockets the
 * namespace's child opened. Takes those two fds (closed here, whatever happens). */
static int setup_inside(const struct netd *n, struct vmns *ns, const struct in_addr *ns_addr,
			const struct in_addr *host_addr)
{
	int rfd = ns->rtnl_fd, ffd = ns->nfnl_fd;
	ns->rtnl_fd = ns->nfnl_fd = -1;
	struct rtnl *r = rtnl_fdopen(rfd);
	struct nft *f = nft_fdopen(ffd);
	unsigned lo = 0, tap = 0, veth = 0;
	struct in_addr any = {0};
	int rc;
	if (!r || !f) { /* both take their fd, whatever happens */
		rc = -ENOMEM;
		goto out;
	}
	struct in_addr gw = n->guest_gw;
	if ((rc = rtnl_link_index(r, "lo", &lo)) < 0 || (rc = rtnl_link_setup(r, lo, false, false)) < 0 ||
	    (rc = rtnl_link_index(r, NETD_TAP, &tap)) < 0 || (rc = rtnl_addr_add(r, tap, gw, 30)) < 0 ||
	    (rc = rtnl_link_setup(r, tap, true, true)) < 0)
		goto out;
	if (ns_addr) {
		if ((rc = rtnl_link_index(r, NETD_NS_VETH, &veth)) < 0 ||
		    (rc = rtnl_addr_add(r, veth, *ns_addr, 30)) < 0 ||
		    (rc = rtnl_link_setup(r, veth, true, false)) < 0 ||
		    (rc = rtnl_route_add(r, any, 0, *host_addr)) < 0)
			goto out;
	}
	rc = nft_vm_table(f, ns_addr ? NETD_NS_VETH : NETD_PASTA_IF, NETD_TAP, n->guest, !ns_addr);
out:
	if (f)
		nft_close(f);
	if (r)
		rtnl_close(r);
	return rc;
}

/* A free slot, found by creating its host link: NLM_F_EXCL makes the kernel the allocator, so
 * two netds (two supervisors on one host) never share one. */
static int make_host_link(struct netd *n, const char *vm, int netns_fd, unsigned *slot, char *name, size_t len)
{
	char alias[64];
	snprintf(alias, sizeof(alias), "%s%s", n->alias_prefix, vm);
	for (unsigned tried = 0; tried < n->nslots; tried++) {
		unsigned s = (n->next_slot + tried) % n->nslots;
		snprintf(name, len, NETD_HOST_PREFIX "%u", s);
		int rc = rtnl_veth_create(n->host_rtnl, name, alias, NETD_NS_VETH, netns_fd);
		if (rc == -EEXIST)
			continue;
		if (rc == 0) {
			*slot = s;
			n->next_slot = (s + 1) % n->nslots;
		}
		return rc;
	}
	return -ENOSPC;
}

static int host_side(struct netd *n, const char *vm, struct vmns *ns, const struct pub_port *p, size_t np,
		     struct netd_made *out, char *why, size_t whylen)
{
	unsigned slot = 0, idx = 0;
	int rc = make_host_link(n, vm, ns->netns_fd, &slot, out->host_if, sizeof(out->host_if));
	if (rc < 0) {
		snprintf(why, whylen, "%s",
			 rc == -ENOSPC ? "the VM address pool is used up" : "cannot make the veth pair");
		return rc;
	}
	out->host_addr = slot_host(n, slot);
	out->ns_addr = slot_ns(n, slot);
	if ((rc = rtnl_link_index(n->host_rtnl, out->host_if, &idx)) < 0 ||
	    (rc = rtnl_addr_add(n->host_rtnl, idx, out->host_addr, 30)) < 0 ||
	    (rc = rtnl_link_setup(n->host_rtnl, idx, true, true)) < 0) {
		snprintf(why, whylen, "cannot set up %s", out->host_if);
		goto fail;
	}
	if ((rc = setup_inside(n, ns, &out->ns_addr, &out->host_addr)) < 0) {
		snprintf(why, whylen, "cannot set up the VM's namespace");
		goto fail;
	}
	if ((rc = nft_host_ensure(n->host_nft, n->table, n->pool, n->pool_prefix)) < 0) {
		snprintf(why, whylen, "cannot make the nftables table %s", n->table);
		goto fail;
	}
	if (np && (rc = nft_host_ports(n->host_nft, n->table, p, np, out->ns_addr, true)) < 0) {
		if (rc == -EEXIST)
			snprintf(why, whylen, "a host port asked for is already published by another VM");
		else
			snprintf(why, whylen, "cannot publish the ports");
		goto fail;
	}
	return 0;
fail:
	rtnl_link_delete(n->host_rtnl, out->host_if);
	return rc;
}

int netd_create(struct netd *n, const char *vm, bool bridged, const struct pub_port *p, size_t np,
		struct netd_made *out, char *why, size_t whylen)
{
	struct vmns ns;
	int rc;
	memset(out, 0, sizeof(*out));
	out->tap_fd = out->netns_fd = out->userns_fd = -1;
	if ((rc = vmns_make(&ns, NETD_TAP)) < 0) {
		snprintf(why, whylen, "cannot make the VM's namespaces%s",
			 rc == -EACCES ? " (/dev/net/tun must be mode 0666, the distribution's default)" : "");
		return rc;
	}
	if (bridged)
		rc = host_side(n, vm, &ns, p, np, out, why, whylen);
	else if ((rc = setup_inside(n, &ns, NULL, NULL)) < 0)
		snprintf(why, whylen, "cannot set up the VM's namespace");
	if (rc < 0) {
		vmns_close(&ns);
		return rc;
	}
	out->tap_fd = ns.tap_fd;
	out->netns_fd = ns.netns_fd;
	out->userns_fd = ns.userns_fd;
	return 0;
}

/* ---- records: the instance's links, read back from the kernel ---- */

struct ours {
	const struct netd *n;
	unsigned char *live; /* slot -> 1 when a link of this instance holds it (filled) */
	const char *name;    /* looked for (NULL: none): its alias into alias, found set */
	char alias[128];
	bool found;
};

static int slot_of(const char *name, unsigned nslots, unsigned *slot)
{
	char *end;
	if (strncmp(name, NETD_HOST_PREFIX, strlen(NETD_HOST_PREFIX)) != 0)
		return -1;
	unsigned long s = strtoul(name + strlen(NETD_HOST_PREFIX), &end, 10);
	if (*end || end == name + strlen(NETD_HOST_PREFIX) || s >= nslots)
		return -1;
	*slot = (unsigned)s;
	return 0;
}

static int note_link(const struct rtnl_link_info *l, void *arg)
{
	struct ours *o = arg;
	unsigned s;
	if (o->name && strcmp(l->name, o->name) == 0) {
		o->found = true;
		snprintf(o->alias, sizeof(o->alias), "%s", l->alias);
	}
	if (slot_of(l->name, o->n->nslots, &s) == 0 &&
	    strncmp(l->alias, o->n->alias_prefix, strlen(o->n->alias_prefix)) == 0)
		o->live[s] = 1;
	return 0;
}

struct stale {
	struct netd *n;
	const unsigned char *live;
	struct pub_port del[64];
	struct in_addr to[64];
	size_t ndel;
};

static int note_port(const struct pub_port *p, struct in_addr vm_addr, void *arg)
{
	struct stale *st = arg;
	uint32_t off = ntohl(vm_addr.s_addr) - ntohl(st->n->pool.s_addr); /* below the pool: huge */
	if (off / 4 < st->n->nslots && st->live[off / 4])
		return 0;
	if (st->ndel == sizeof(st->del) / sizeof(st->del[0]))
		return 0; /* the rest on the next round */
	st->del[st->ndel] = *p;
	st->to[st->ndel++] = vm_addr;
	return 0;
}

/* Remove the published ports of slots no live link of this instance holds; the table goes
 * when no slot is live. */
static int sweep(struct netd *n, const unsigned char *live)
{
	struct stale st = {.n = n, .live = live};
	bool any = false;
	int rc = nft_host_port_dump(n->host_nft, n->table, note_port, &st);
	if (rc == -ENOENT)
		return 0;
	for (size_t i = 0; rc == 0 && i < st.ndel; i++) {
		char txt[48];
		netd_port_text(&st.del[i], txt, sizeof(txt));
		rc = nft_host_ports(n->host_nft, n->table, &st.del[i], 1, st.to[i], false);
		log_info("removed published port %s of a VM that is gone", txt);
	}
	for (unsigned s = 0; s < n->nslots && !any; s++)
		any = live[s];
	if (rc == 0 && !any && (rc = nft_host_delete(n->host_nft, n->table)) == -ENOENT)
		rc = 0;
	return rc;
}

int netd_reconcile(struct netd *n)
{
	if (!n->system)
		return 0; /* rootless networks have nothing outside their namespace */
	struct ours o = {.n = n, .live = calloc(n->nslots, 1)};
	if (!o.live)
		return -ENOMEM;
	int rc = rtnl_link_dump(n->host_rtnl, note_link, &o);
	if (rc == 0)
		rc = sweep(n, o.live);
	free(o.live);
	return rc;
}

int netd_destroy(struct netd *n, const char *vm, const char *host_if, char *why, size_t whylen)
{
	char want[128];
	unsigned slot;
	int rc;
	if (!host_if)
		return 0;
	if (!n->system) {
		snprintf(why, whylen, "a rootless netd has no host links");
		return -EPERM;
	}
	if (slot_of(host_if, n->nslots, &slot) < 0) {
		snprintf(why, whylen, "'%s' is not a VM link of fcvm's", host_if);
		return -EPERM;
	}
	struct ours o = {.n = n, .name = host_if, .live = calloc(n->nslots, 1)};
	if (!o.live)
		return -ENOMEM;
	snprintf(want, sizeof(want), "%s%s", n->alias_prefix, vm);
	if ((rc = rtnl_link_dump(n->host_rtnl, note_link, &o)) < 0) {
		snprintf(why, whylen, "cannot list links");
	} else if (o.found && strcmp(o.alias, want) != 0) {
		snprintf(why, whylen, "%s was not made for this VM by this fcvm instance", host_if);
		rc = -EPERM;
	} else if (o.found && (rc = rtnl_link_delete(n->host_rtnl, host_if)) < 0 && rc != -ENODEV) {
		snprintf(why, whylen, "cannot delete %s", host_if);
	} else {
		/* gone already (its VMM exited) or just deleted: its ports, and what else is stale */
		o.live[slot] = 0;
		if ((rc = sweep(n, o.live)) < 0)
			snprintf(why, whylen, "cannot remove the published ports");
	}
	free(o.live);
	return rc;
}
