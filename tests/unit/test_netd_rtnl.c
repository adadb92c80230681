/* netd's rtnetlink (helpers/netd/rtnl.c) and VM namespaces (helpers/netd/vmns.c). Root only.
 * Each test first moves into a network namespace of its own (unshare(CLONE_NEWNET)), which
 * stands for the host: the real host's links are never touched, tests can run in parallel,
 * and everything a test makes vanishes with its process, even when it fails. Shelling out
 * to `ip`/`nsenter` is for cross-checking only. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "helpers/netd/rtnl.h"
#include "helpers/netd/vmns.h"
#include "tests/unit/check.h"

#define HOST_IF "fcvmh7"
#define NS_IF	"fcvm0"
#define TAP_IF	"fcvmtap0"
#define ALIAS	"fcvm:test:vm1"
#define HOST_IP "10.231.0.29"
#define NS_IP	"10.231.0.30"
#define TAP_IP	"10.254.254.1"

static struct in_addr ip4(const char *s)
{
	struct in_addr a;

	CHECK(inet_pton(AF_INET, s, &a) == 1);
	return a;
}

static void test_netns(void)
{
	if (geteuid() != 0)
		SKIP("needs root");
	CHECK(unshare(CLONE_NEWNET) == 0);
}

static struct rtnl *vmns_rtnl(const struct vmns *ns)
{
	int fd = fcntl(ns->rtnl_fd, F_DUPFD_CLOEXEC, 0);
	struct rtnl *r;

	CHECK(fd >= 0);
	r = rtnl_fdopen(fd);
	CHECK(r);
	return r;
}

struct find {
	const char *name;
	bool found;
	char alias[128];
};

static int find_cb(const struct rtnl_link_info *l, void *arg)
{
	struct find *f = arg;

	if (strcmp(l->name, f->name) != 0)
		return 0;
	f->found = true;
	snprintf(f->alias, sizeof(f->alias), "%s", l->alias);
	return 1; /* stop the walk: checks that a stopped dump leaves the socket usable */
}

static bool dump_has(struct rtnl *r, const char *name, char *alias, size_t alias_len)
{
	struct find f = {.name = name};
	int ret = rtnl_link_dump(r, find_cb, &f);

	CHECK(ret == 0 || ret == 1);
	if (alias && f.found)
		snprintf(alias, alias_len, "%s", f.alias);
	return f.found;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bounded wait for `name` to leave r's namespace. */
static bool wait_link_gone(struct rtnl *r, const char *name, double secs)
{
	double end = now() + secs;
	struct timespec tick = {0, 10 * 1000 * 1000};
	unsigned idx;

	while (now() < end) {
		if (rtnl_link_index(r, name, &idx) == -ENODEV)
			return true;
		nanosleep(&tick, NULL);
	}
	return false;
}

static uint16_t icmp_sum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint32_t s = 0;

	for (; len > 1; len -= 2, b += 2) {
		uint16_t w;
		memcpy(&w, b, 2);
		s += w;
	}
	if (len)
		s += *b;
	s = (s >> 16) + (s & 0xffff);
	s += s >> 16;
	return (uint16_t)~s;
}

/* One ICMP echo to addr, up to `tries` times with a 2 s wait each: ping -c1 -W2 without
 * iputils (not installed), through an ICMP datagram socket, which needs allow_ping() first.
 * true when a reply came. */
static bool ping(const char *addr, int tries)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = ip4(addr)};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
	bool ok = false;

	CHECK(fd >= 0);
	for (int i = 0; i < tries && !ok; i++) {
		struct icmphdr h = {.type = ICMP_ECHO, .un.echo.sequence = htons((uint16_t)i)};
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		char buf[256];

		h.checksum = icmp_sum(&h, sizeof(h));
		CHECK(sendto(fd, &h, sizeof(h), 0, (struct sockaddr *)&sa, sizeof(sa)) == sizeof(h));
		while (!ok && poll(&pfd, 1, 2000) == 1) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			const struct icmphdr *r = (const void *)buf;
			ok = n >= (ssize_t)sizeof(*r) && r->type == ICMP_ECHOREPLY;
		}
	}
	close(fd);
	return ok;
}

/* Lets every gid of the test's namespace open ICMP datagram sockets (root included). */
static void allow_ping(void)
{
	int fd = open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK(write(fd, "0 2147483647", 12) == 12);
	close(fd);
}

/* The bridged layout of docs/networking.md, through rtnl and vmns only. */
static void bridged_setup(struct rtnl *host, struct vmns *ns, struct rtnl **inner)
{
	unsigned hidx, lo, nidx, tidx;

	CHECK_EQ(vmns_make(ns, TAP_IF), 0);
	*inner = vmns_rtnl(ns);
	CHECK_EQ(rtnl_veth_create(host, HOST_IF, ALIAS, NS_IF, ns->netns_fd), 0);
	CHECK_EQ(rtnl_link_index(host, HOST_IF, &hidx), 0);
	CHECK_EQ(rtnl_addr_add(host, hidx, ip4(HOST_IP), 30), 0);
	CHECK_EQ(rtnl_link_setup(host, hidx, true, true), 0);

	CHECK_EQ(rtnl_link_index(*inner, "lo", &lo), 0);
	CHECK_EQ(rtnl_link_setup(*inner, lo, false, false), 0);
	CHECK_EQ(rtnl_link_index(*inner, NS_IF, &nidx), 0);
	CHECK_EQ(rtnl_addr_add(*inner, nidx, ip4(NS_IP), 30), 0);
	CHECK_EQ(rtnl_link_setup(*inner, nidx, true, false), 0);
	CHECK_EQ(rtnl_link_index(*inner, TAP_IF, &tidx), 0);
	CHECK_EQ(rtnl_addr_add(*inner, tidx, ip4(TAP_IP), 30), 0);
	CHECK_EQ(rtnl_link_setup(*inner, tidx, true, true), 0);
	CHECK_EQ(rtnl_route_add(*inner, ip4("0.0.0.0"), 0, ip4(HOST_IP)), 0);
}

/* What needs no privilege: links through the sockets, and the ping. */
static void bridged_check(struct rtnl *host, struct rtnl *inner)
{
	char alias[128] = "";

	CHECK(dump_has(host, HOST_IF, alias, sizeof(alias)));
	CHECK_STR(alias, ALIAS);
	CHECK(!dump_has(host, NS_IF, NULL, 0));
	CHECK(!dump_has(host, TAP_IF, NULL, 0));
	CHECK(dump_has(inner, NS_IF, NULL, 0));
	CHECK(dump_has(inner, TAP_IF, NULL, 0));
	CHECK(!dump_has(inner, HOST_IF, NULL, 0));
	/* a second route to the same place: the kernel's -EEXIST comes back */
	CHECK_EQ(rtnl_route_add(inner, ip4("0.0.0.0"), 0, ip4(HOST_IP)), -EEXIST);
	CHECK(ping(NS_IP, 3));
}

static bool has(const char *hay, const char *needle)
{
	if (strstr(hay, needle))
		return true;
	fprintf(stderr, "missing %s in: %s\n", needle, hay);
	return false;
}

/* The same seen by iproute2, in the test's namespace and (nsenter) in the VM's. */
static void bridged_check_ip(const struct vmns *ns)
{
	char out[16384], cmd[512], nsenter[96];

	snprintf(nsenter, sizeof(nsenter), "nsenter --net=/proc/%d/fd/%d", getpid(), ns->netns_fd);
	check_sh_out(out, sizeof(out), "ip -j addr show dev " HOST_IF);
	CHECK(has(out, "\"local\":\"" HOST_IP "\",\"prefixlen\":30"));
	CHECK(has(out, "\"operstate\":\"UP\""));
	check_sh_out(out, sizeof(out), "ip -j link show dev " HOST_IF);
	CHECK(has(out, "\"ifalias\":\"" ALIAS "\""));
	CHECK_EQ(check_sh("grep -qx 1 /proc/sys/net/ipv4/conf/" HOST_IF "/forwarding"), 0);
	CHECK_EQ(check_sh("grep -qx 1 /proc/sys/net/ipv4/conf/" HOST_IF "/route_localnet"), 0);
	snprintf(cmd, sizeof(cmd), "%s ip -j addr", nsenter);
	check_sh_out(out, sizeof(out), cmd);
	CHECK(has(out, "\"local\":\"" NS_IP "\",\"prefixlen\":30"));
	CHECK(has(out, "\"local\":\"" TAP_IP "\",\"prefixlen\":30"));
	CHECK(has(out, "\"local\":\"127.0.0.1\""));
	snprintf(cmd, sizeof(cmd), "%s ip -d -j route show default", nsenter);
	check_sh_out(out, sizeof(out), cmd);
	CHECK(has(out, "\"dst\":\"default\",\"gateway\":\"" HOST_IP "\",\"dev\":\"" NS_IF "\""));
	CHECK(has(out, "\"protocol\":\"boot\""));
	/* the namespace-wide sysctls (devices made later, pasta's, inherit them) and the devices' */
	snprintf(cmd, sizeof(cmd),
		 "%s sh -c 'grep -qx 1 /proc/sys/net/ipv4/ip_forward && "
		 "grep -qx 1 /proc/sys/net/ipv4/conf/all/route_localnet && "
		 "grep -qx 1 /proc/sys/net/ipv4/conf/" TAP_IF "/forwarding && "
		 "grep -qx 1 /proc/sys/net/ipv4/conf/" NS_IF "/forwarding'",
		 nsenter);
	CHECK_EQ(check_sh("%s", cmd), 0);
}

TEST(vmns_fds)
{
	struct vmns ns;
	struct ifreq ifr = {0};
	struct rtnl *host, *inner;
	char cmd[160];
	int proto = 0;
	socklen_t plen = sizeof(proto);
	unsigned idx;

	test_netns();
	CHECK_EQ(vmns_make(&ns, TAP_IF), 0);
	CHECK_EQ(ioctl(ns.netns_fd, NS_GET_NSTYPE), CLONE_NEWNET);
	CHECK_EQ(ioctl(ns.userns_fd, NS_GET_NSTYPE), CLONE_NEWUSER);
	CHECK_EQ(getsockopt(ns.rtnl_fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen), 0);
	CHECK_EQ(proto, NETLINK_ROUTE);
	CHECK_EQ(getsockopt(ns.nfnl_fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen), 0);
	CHECK_EQ(proto, NETLINK_NETFILTER);
	CHECK_EQ(ioctl(ns.tap_fd, TUNGETIFF, &ifr), 0);
	CHECK_STR(ifr.ifr_name, TAP_IF);
	CHECK_EQ(ifr.ifr_flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	const int fds[] = {ns.userns_fd, ns.netns_fd, ns.rtnl_fd, ns.nfnl_fd, ns.tap_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		CHECK(fcntl(fds[i], F_GETFD) == FD_CLOEXEC);

	host = rtnl_open();
	CHECK(host);
	inner = vmns_rtnl(&ns);
	CHECK(dump_has(inner, TAP_IF, NULL, 0));
	CHECK(dump_has(inner, "lo", NULL, 0));
	CHECK(!dump_has(host, TAP_IF, NULL, 0));
	CHECK_EQ(rtnl_link_index(host, TAP_IF, &idx), -ENODEV);
	snprintf(cmd, sizeof(cmd), "nsenter --net=/proc/%d/fd/%d ip -j link show " TAP_IF " >/dev/null", getpid(),
		 ns.netns_fd);
	CHECK_EQ(check_sh("%s", cmd), 0);
	CHECK(check_sh("ip link show " TAP_IF " >/dev/null 2>&1") != 0);
	rtnl_close(inner);
	rtnl_close(host);
	vmns_close(&ns);
	CHECK_EQ(ns.tap_fd, -1);
	CHECK_EQ(ns.netns_fd, -1);
}

TEST(vmns_bad_tap_name)
{
	struct vmns ns;

	test_netns();
	CHECK_EQ(vmns_make(&ns, "a-name-longer-than-ifnamsiz"), -EINVAL);
	CHECK_EQ(ns.tap_fd, -1);
	CHECK_EQ(ns.userns_fd, -1);
}

/* The tap fd alone holds the namespace; without it the namespace, and the veth into it, go. */
TEST(vmns_lifetime)
{
	struct vmns ns;
	struct rtnl *host;
	unsigned idx;
	int tap;

	test_netns();
	host = rtnl_open();
	CHECK(host);
	CHECK_EQ(vmns_make(&ns, TAP_IF), 0);
	CHECK_EQ(rtnl_veth_create(host, HOST_IF, ALIAS, NS_IF, ns.netns_fd), 0);
	tap = ns.tap_fd;
	ns.tap_fd = -1;
	vmns_close(&ns);
	CHECK(!wait_link_gone(host, HOST_IF, 0.5)); /* (bounded: it must still be there after) */
	CHECK_EQ(rtnl_link_index(host, HOST_IF, &idx), 0);
	close(tap);
	CHECK(wait_link_gone(host, HOST_IF, 20));
	rtnl_close(host);
}

TEST(bridged)
{
	struct vmns ns;
	struct rtnl *host, *inner;

	test_netns();
	allow_ping();
	host = rtnl_open();
	CHECK(host);
	bridged_setup(host, &ns, &inner);
	bridged_check(host, inner);
	bridged_check_ip(&ns);
	rtnl_close(inner);
	rtnl_close(host);
	vmns_close(&ns);
}

TEST(link_dump_delete_errors)
{
	struct vmns ns;
	struct rtnl *host, *inner;
	char alias[128] = "";
	unsigned idx;

	test_netns();
	host = rtnl_open();
	CHECK(host);
	CHECK_EQ(vmns_make(&ns, TAP_IF), 0);
	inner = vmns_rtnl(&ns);
	CHECK_EQ(rtnl_veth_create(host, HOST_IF, ALIAS, NS_IF, ns.netns_fd), 0);
	CHECK(dump_has(host, HOST_IF, alias, sizeof(alias)));
	CHECK_STR(alias, ALIAS);
	CHECK(dump_has(host, "lo", alias, sizeof(alias)));
	CHECK_STR(alias, "");
	CHECK_EQ(rtnl_veth_create(host, HOST_IF, ALIAS, "fcvm1", ns.netns_fd), -EEXIST);
	CHECK_EQ(rtnl_link_delete(host, HOST_IF), 0);
	CHECK_EQ(rtnl_link_index(host, HOST_IF, &idx), -ENODEV);
	CHECK(wait_link_gone(inner, NS_IF, 5));
	CHECK_EQ(rtnl_link_delete(host, HOST_IF), -ENODEV);
	CHECK_EQ(rtnl_link_index(host, "fcvmnone", &idx), -ENODEV);
	CHECK_EQ(rtnl_veth_create(host, "a-name-longer-than-ifnamsiz", ALIAS, NS_IF, ns.netns_fd), -EINVAL);
	rtnl_close(inner);
	rtnl_close(host);
	vmns_close(&ns);
}

/* Becomes `fcvm-netd` with CAP_NET_ADMIN alone, as netd runs. */
static void become_netd(void)
{
	struct passwd *pw = getpwnam("fcvm-netd");
	struct rlimit rl;
	cap_t caps;

	if (!pw)
		SKIP("no user fcvm-netd");
	CHECK(getrlimit(RLIMIT_NPROC, &rl) == 0);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 256) {
		rl.rlim_cur = rl.rlim_max = 256;
		CHECK(setrlimit(RLIMIT_NPROC, &rl) == 0);
	}
	CHECK(prctl(PR_SET_KEEPCAPS, 1) == 0);
	CHECK(setgroups(0, NULL) == 0);
	CHECK(setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == 0);
	CHECK(setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == 0);
	caps = cap_from_text("cap_net_admin=ep");
	CHECK(caps);
	CHECK(cap_set_proc(caps) == 0);
	cap_free(caps);
	caps = cap_get_proc();
	char *txt = cap_to_text(caps, NULL);
	CHECK_STR(txt, "cap_net_admin=ep");
	cap_free(txt);
	cap_free(caps);
	CHECK_EQ(geteuid(), pw->pw_uid);
}

/* The design's key assumption: all of the above needs only CAP_NET_ADMIN, no root. */
TEST(bridged_unprivileged)
{
	struct vmns ns;
	struct rtnl *host, *inner;

	test_netns();
	allow_ping();
	become_netd();
	host = rtnl_open();
	CHECK(host);
	bridged_setup(host, &ns, &inner);
	bridged_check(host, inner);
	rtnl_close(inner);
	rtnl_close(host);
	vmns_close(&ns);
}
