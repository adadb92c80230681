/* The guest's network (agent/net.h). Interfaces are set with the classic ioctls: the agent is
 * static with no netlink library, and one address plus one route is all it needs. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/net.h"
#include "common/util.h"

#define ETC_DIR "/run/fcvm" /* on /run's tmpfs: the rootfs is read-only */

static int bad(char *why, size_t whylen, const char *text, const char *what)
{
	snprintf(why, whylen, "fcvm.net=%.80s: %s (want ADDR/PREFIX,GW,MAC[,DNS] or none)", text, what);
	return -1;
}

/* A dotted quad, exactly (inet_pton takes four decimal parts, no leading zeros). */
static bool parse_ipv4(const char *s, size_t len, struct in_addr *a)
{
	char buf[INET_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = 0;
	return inet_pton(AF_INET, buf, a) == 1;
}

static bool parse_mac(const char *s, size_t len, char *out)
{
	if (len != 17)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[len] = 0;
	return true;
}

static uint32_t prefix_mask(unsigned prefix)
{
	return prefix ? 0xffffffffu << (32 - prefix) : 0;
}

int net_parse(const char *text, struct net_spec *n, char *why, size_t whylen)
{
	const char *field[5];
	size_t flen[5], nf = 0;

	memset(n, 0, sizeof(*n));
	if (!text || strcmp(text, "none") == 0)
		return 0;
	for (const char *p = text; nf < ARRAY_LEN(field); p += flen[nf - 1] + 1) {
		field[nf] = p;
		flen[nf] = strcspn(p, ",");
		if (!p[flen[nf++]])
			break;
	}
	if (nf < 3 || nf > 4)
		return bad(why, whylen, text, "wrong number of fields");

	const char *slash = memchr(field[0], '/', flen[0]);
	if (!slash || !parse_ipv4(field[0], (size_t)(slash - field[0]), &n->addr))
		return bad(why, whylen, text, "bad address");
	size_t plen = flen[0] - (size_t)(slash + 1 - field[0]);
	if (plen < 1 || plen > 2 || strspn(slash + 1, "0123456789") < plen)
		return bad(why, whylen, text, "bad prefix length");
	n->prefix = (unsigned)strtoul(slash + 1, NULL, 10); /* 1 or 2 digits, checked */
	if (n->prefix < 1 || n->prefix > 32)
		return bad(why, whylen, text, "bad prefix length");
	if (!parse_ipv4(field[1], flen[1], &n->gw))
		return bad(why, whylen, text, "bad gateway");
	if (!parse_mac(field[2], flen[2], n->mac))
		return bad(why, whylen, text, "bad MAC");
	if (nf == 4) {
		if (!parse_ipv4(field[3], flen[3], &n->dns))
			return bad(why, whylen, text, "bad DNS server");
		n->has_dns = true;
	}
	/* the default route's gateway must be on the link (the ioctl route has no onlink) */
	uint32_t mask = prefix_mask(n->prefix), a = ntohl(n->addr.s_addr), g = ntohl(n->gw.s_addr);
	if ((a & mask) != (g & mask) || a == g)
		return bad(why, whylen, text, "gateway not in the address's subnet");
	return 1;
}

/* The interface with n's MAC; with fallback, else the first (by index) that is not loopback. */
static bool find_if(const struct net_spec *n, bool fallback, char *ifname, size_t len)
{
	struct if_nameindex *ifs = if_nameindex();
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool found = false;

	ifname[0] = 0;
	for (struct if_nameindex *i = ifs; fd >= 0 && i && i->if_index && !found; i++) {
		struct ifreq ifr = {0};
		char mac[18];
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", i->if_name);
		if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0 || ifr.ifr_hwaddr.sa_family == ARPHRD_LOOPBACK)
			continue;
		const unsigned char *h = (const unsigned char *)ifr.ifr_hwaddr.sa_data;
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4], h[5]);
		if (strcmp(mac, n->mac) == 0) {
			snprintf(ifname, len, "%s", i->if_name);
			found = true;
		} else if (fallback && !ifname[0]) {
			snprintf(ifname, len, "%s", i->if_name);
		}
	}
	if (ifs)
		if_freenameindex(ifs);
	if (fd >= 0)
		close(fd);
	return found || ifname[0];
}

bool net_find_if(const struct net_spec *n, char *ifname, size_t len)
{
	return find_if(n, true, ifname, len);
}

static int set_up(int fd, const char *ifname)
{
	struct ifreq ifr = {0};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return -1;
	ifr.ifr_flags |= IFF_UP;
	return ioctl(fd, SIOCSIFFLAGS, &ifr);
}

static void set_sin(struct sockaddr *sa, struct in_addr a)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr = a};
	memcpy(sa, &sin, sizeof(sin));
}

/* SIOCSIFADDR first (it picks a classful mask), then the real mask. */
static int set_addr(int fd, const char *ifname, const struct net_spec *n)
{
	struct ifreq ifr = {0};
	struct in_addr mask = {.s_addr = htonl(prefix_mask(n->prefix))};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	set_sin(&ifr.ifr_addr, n->addr);
	if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		return -1;
	set_sin(&ifr.ifr_netmask, mask);
	return ioctl(fd, SIOCSIFNETMASK, &ifr);
}

static int add_default_route(int fd, const char *ifname, const struct net_spec *n)
{
	struct rtentry rt = {0};
	char dev[IFNAMSIZ];
	struct in_addr any = {.s_addr = INADDR_ANY};

	snprintf(dev, sizeof(dev), "%s", ifname);
	set_sin(&rt.rt_dst, any);
	set_sin(&rt.rt_genmask, any);
	set_sin(&rt.rt_gateway, n->gw);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = dev;
	return ioctl(fd, SIOCADDRT, &rt);
}

static void lo_up(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || set_up(fd, "lo") < 0)
		aerr("lo up: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
}

int net_configure(const struct net_spec *n, const char *ifname)
{
	char gw[INET_ADDRSTRLEN], addr[INET_ADDRSTRLEN];
	const char *step = "socket";
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	lo_up();
	inet_ntop(AF_INET, &n->addr, addr, sizeof(addr));
	inet_ntop(AF_INET, &n->gw, gw, sizeof(gw));
	if (strlen(ifname) >= IFNAMSIZ) {
		errno = EINVAL;
		step = "name";
	} else if (fd >= 0 && (step = "address", set_addr(fd, ifname, n) == 0) &&
		   (step = "up", set_up(fd, ifname) == 0) &&
		   (step = "default route", add_default_route(fd, ifname, n) == 0)) {
		close(fd);
		alog("net: %s (%s) is %s/%u, default route via %s", ifname, n->mac, addr, n->prefix, gw);
		return 0;
	}
	aerr("net %s: %s: %s", ifname, step, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	size_t len = strlen(text);

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len;
	if (!ok)
		aerr("net: %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

int net_write_etc(const struct net_spec *n, const char *dir, const char *hostname)
{
	char resolv[64] = "", hosts[256], addr[INET_ADDRSTRLEN], dns[INET_ADDRSTRLEN];

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		aerr("net: %s: %s", dir, strerror(errno));
		return -1;
	}
	inet_ntop(AF_INET, &n->addr, addr, sizeof(addr));
	if (n->has_dns) {
		inet_ntop(AF_INET, &n->dns, dns, sizeof(dns));
		snprintf(resolv, sizeof(resolv), "nameserver %s\n", dns);
	}
	snprintf(hosts, sizeof(hosts), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n",
		 addr, hostname);
	return write_file(dir, "resolv.conf", resolv) | write_file(dir, "hosts", hosts);
}

/* Over the rootfs's own (empty) file: a bind mount needs an existing target, and the
 * read-only root cannot get one now (cli/setup_rootfs.c makes both). */
static void bind_over(const char *name)
{
	char src[64], dst[64];

	snprintf(src, sizeof(src), ETC_DIR "/%s", name);
	snprintf(dst, sizeof(dst), "/etc/%s", name);
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
		aerr("net: bind %s on %s: %s", src, dst, strerror(errno));
}

void net_boot(const char *spec, const char *hostname)
{
	struct net_spec n;
	char why[192], ifname[IFNAMSIZ];
	int r = net_parse(spec, &n, why, sizeof(why));

	if (r < 0)
		aerr("%s: network off", why);
	if (r <= 0) {
		lo_up();
		return;
	}
	/* virtio_net probes as its module loads; allow a little time for the NIC anyway */
	for (int i = 0; i < 200 && !find_if(&n, false, ifname, sizeof(ifname)); i++)
		usleep(10000);
	if (!ifname[0] && !net_find_if(&n, ifname, sizeof(ifname))) {
		aerr("net: no interface with MAC %s, nor any other: network off", n.mac);
		lo_up();
		return;
	}
	if (net_configure(&n, ifname) < 0)
		return;
	ag.net_on = true;
	if (net_write_etc(&n, ETC_DIR, hostname) == 0) {
		bind_over("resolv.conf");
		bind_over("hosts");
	}
}

int net_test(const char *spec, const char *ifname, const char *etc_dir)
{
	struct net_spec n;
	char why[192], found[IFNAMSIZ];
	int r = net_parse(spec, &n, why, sizeof(why));

	if (r < 0) {
		aerr("%s", why);
		return 1;
	}
	if (r == 0) {
		lo_up();
		return 0;
	}
	if (!ifname) {
		if (!net_find_if(&n, found, sizeof(found))) {
			aerr("net: no interface");
			return 1;
		}
		ifname = found;
	}
	if (net_configure(&n, ifname) < 0)
		return 1;
	if (etc_dir && net_write_etc(&n, etc_dir, "fcvm") < 0)
		return 1;
	printf("%s\n", ifname); /* which interface was configured, for the test */
	return 0;
}
