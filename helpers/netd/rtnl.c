/* rtnetlink through libmnl: one request, one ACK (or one dump) at a time. */
#include "helpers/netd/rtnl.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Large enough that a dump's datagrams are never truncated (libmnl's advice: 32 KiB). */
#define RTNL_BUFSZ 32768

struct rtnl {
	struct mnl_socket *nl;
	unsigned seq;
	char buf[RTNL_BUFSZ];
};

static struct rtnl *rtnl_wrap(struct mnl_socket *nl)
{
	struct rtnl *r;

	if (!nl)
		return NULL;
	/* An unbound socket (one vmns made) reports port 0: bind it so replies can be matched. */
	if (mnl_socket_get_portid(nl) == 0 && mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	r = calloc(1, sizeof(*r));
	if (!r)
		goto fail;
	r->nl = nl;
	r->seq = (unsigned)getpid();
	return r;
fail:
	mnl_socket_close(nl);
	return NULL;
}

struct rtnl *rtnl_open(void)
{
	return rtnl_wrap(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC));
}

struct rtnl *rtnl_fdopen(int fd)
{
	struct mnl_socket *nl = mnl_socket_fdopen(fd);

	if (!nl) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return rtnl_wrap(nl);
}

void rtnl_close(struct rtnl *r)
{
	if (!r)
		return;
	mnl_socket_close(r->nl);
	free(r);
}

static struct nlmsghdr *rtnl_msg(struct rtnl *r, unsigned short type, unsigned short flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(r->buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++r->seq;
	return nlh;
}

/* Sends nlh and reads replies until its ACK, error or NLMSG_DONE; cb (may be NULL) sees
 * each data message. 0 or -errno (the kernel's, from an NLMSG_ERROR). */
static int rtnl_talk(struct rtnl *r, struct nlmsghdr *nlh, mnl_cb_t cb, void *arg)
{
	unsigned seq = nlh->nlmsg_seq, portid = mnl_socket_get_portid(r->nl);
	ssize_t n;
	int ret;

	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(r->nl, r->buf, sizeof(r->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(r->buf, (size_t)n, seq, portid, cb, arg);
		if (ret == MNL_CB_ERROR)
			return errno ? -errno : -EIO;
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

/* Appends a struct ifinfomsg to nlh at its current tail (for VETH_INFO_PEER's payload). */
static struct ifinfomsg *put_ifinfomsg(struct nlmsghdr *nlh)
{
	struct ifinfomsg *ifm = mnl_nlmsg_get_payload_tail(nlh);

	memset(ifm, 0, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	nlh->nlmsg_len += MNL_ALIGN(sizeof(*ifm));
	return ifm;
}

static bool ifname_ok(const char *name)
{
	return name && name[0] && strlen(name) < IF_NAMESIZE;
}

/* The kernel ignores IFLA_IFALIAS in a link's creation request, so the alias is a second
 * request. A link is left without one only if that fails (then it is deleted here) or netd
 * dies in between; a veth into a VM namespace then vanishes with the namespace, which lived
 * only through netd's fds. */
static int link_set_alias(struct rtnl *r, const char *name, const char *alias)
{
	struct nlmsghdr *nlh = rtnl_msg(r, RTM_NEWLINK, NLM_F_ACK);
	int ret;

	put_ifinfomsg(nlh);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	mnl_attr_put_strz(nlh, IFLA_IFALIAS, alias);
	ret = rtnl_talk(r, nlh, NULL, NULL);
	if (ret)
		rtnl_link_delete(r, name);
	return ret;
}

int rtnl_veth_create(struct rtnl *r, const char *name, const char *alias, const char *peer, int peer_netns_fd)
{
	struct nlmsghdr *nlh;
	struct nlattr *linkinfo, *data, *peerinfo;
	int ret;

	if (!ifname_ok(name) || !ifname_ok(peer) || !alias || strlen(alias) >= 128 || peer_netns_fd < 0)
		return -EINVAL;
	nlh = rtnl_msg(r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
	put_ifinfomsg(nlh);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	peerinfo = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	put_ifinfomsg(nlh);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
	mnl_attr_nest_end(nlh, peerinfo);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, linkinfo);
	ret = rtnl_talk(r, nlh, NULL, NULL);
	if (ret == 0)
		ret = link_set_alias(r, name, alias);
	return ret;
}

static int link_index_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type == RTM_NEWLINK)
		*(unsigned *)arg = (unsigned)ifm->ifi_index;
	return MNL_CB_OK;
}

int rtnl_link_index(struct rtnl *r, const char *name, unsigned *ifindex)
{
	struct nlmsghdr *nlh;
	unsigned idx = 0;
	int ret;

	if (!ifname_ok(name))
		return -EINVAL;
	nlh = rtnl_msg(r, RTM_GETLINK, NLM_F_ACK);
	put_ifinfomsg(nlh);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	ret = rtnl_talk(r, nlh, link_index_cb, &idx);
	if (ret == 0 && idx == 0)
		ret = -ENODEV;
	if (ret == 0)
		*ifindex = idx;
	return ret;
}

int rtnl_link_setup(struct rtnl *r, unsigned ifindex, bool forwarding, bool route_localnet)
{
	struct nlmsghdr *nlh = rtnl_msg(r, RTM_NEWLINK, NLM_F_ACK);
	struct ifinfomsg *ifm = put_ifinfomsg(nlh);
	struct nlattr *spec, *inet, *conf;

	ifm->ifi_index = (int)ifindex;
	ifm->ifi_flags = IFF_UP;
	ifm->ifi_change = IFF_UP;
	if (forwarding || route_localnet) {
		spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
		inet = mnl_attr_nest_start(nlh, AF_INET);
		conf = mnl_attr_nest_start(nlh, IFLA_INET_CONF);
		/* Each attribute's type is the IPV4_DEVCONF_* index itself. */
		if (forwarding)
			mnl_attr_put_u32(nlh, IPV4_DEVCONF_FORWARDING, 1);
		if (route_localnet)
			mnl_attr_put_u32(nlh, IPV4_DEVCONF_ROUTE_LOCALNET, 1);
		mnl_attr_nest_end(nlh, conf);
		mnl_attr_nest_end(nlh, inet);
		mnl_attr_nest_end(nlh, spec);
	}
	return rtnl_talk(r, nlh, NULL, NULL);
}

int rtnl_addr_add(struct rtnl *r, unsigned ifindex, struct in_addr addr, unsigned prefix)
{
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;

	if (prefix > 32)
		return -EINVAL;
	nlh = rtnl_msg(r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = ifindex;
	mnl_attr_put(nlh, IFA_LOCAL, sizeof(addr), &addr);
	mnl_attr_put(nlh, IFA_ADDRESS, sizeof(addr), &addr);
	return rtnl_talk(r, nlh, NULL, NULL);
}

int rtnl_route_add(struct rtnl *r, struct in_addr dst, unsigned prefix, struct in_addr gw)
{
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;

	if (prefix > 32)
		return -EINVAL;
	nlh = rtnl_msg(r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = (unsigned char)prefix;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	if (prefix > 0)
		mnl_attr_put(nlh, RTA_DST, sizeof(dst), &dst);
	mnl_attr_put(nlh, RTA_GATEWAY, sizeof(gw), &gw);
	return rtnl_talk(r, nlh, NULL, NULL);
}

int rtnl_link_delete(struct rtnl *r, const char *name)
{
	struct nlmsghdr *nlh;

	if (!ifname_ok(name))
		return -EINVAL;
	nlh = rtnl_msg(r, RTM_DELLINK, NLM_F_ACK);
	put_ifinfomsg(nlh);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return rtnl_talk(r, nlh, NULL, NULL);
}

struct dump_ctx {
	int (*cb)(const struct rtnl_link_info *l, void *arg);
	void *arg;
	int ret; /* the first non-zero cb return; later links are read but not shown */
};

static int link_attr_cb(const struct nlattr *a, void *arg)
{
	struct rtnl_link_info *l = arg;
	const char *s;

	if (mnl_attr_get_type(a) != IFLA_IFNAME && mnl_attr_get_type(a) != IFLA_IFALIAS)
		return MNL_CB_OK;
	if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
		return MNL_CB_OK;
	s = mnl_attr_get_str(a);
	if (mnl_attr_get_type(a) == IFLA_IFNAME)
		snprintf(l->name, sizeof(l->name), "%s", s);
	else
		snprintf(l->alias, sizeof(l->alias), "%s", s);
	return MNL_CB_OK;
}

static int link_dump_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct dump_ctx *c = arg;
	struct rtnl_link_info l = {.name = ""};

	/* Keep reading after a stop so the rest of the dump does not linger in the socket. */
	if (nlh->nlmsg_type != RTM_NEWLINK || c->ret)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(struct ifinfomsg), link_attr_cb, &l);
	c->ret = c->cb(&l, c->arg);
	return MNL_CB_OK;
}

int rtnl_link_dump(struct rtnl *r, int (*cb)(const struct rtnl_link_info *l, void *arg), void *arg)
{
	struct nlmsghdr *nlh = rtnl_msg(r, RTM_GETLINK, NLM_F_DUMP);
	struct dump_ctx c = {.cb = cb, .arg = arg};
	int ret;

	put_ifinfomsg(nlh);
	ret = rtnl_talk(r, nlh, link_dump_cb, &c);
	return ret ? ret : c.ret;
}
