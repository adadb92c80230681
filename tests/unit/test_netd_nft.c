/* netd's nf_tables module (helpers/netd/nft.c) against the real kernel. Root only. Every test
 * runs in a fresh network namespace (unshare in the test's own child), so the host's ruleset
 * is never touched and the tests can run in parallel. The last test sends real traffic
 * through the topology of docs/networking.md built in named namespaces, which the test's
 * process removes after the body's child has exited, pass or fail. Shelling out to nft, ip,
 * curl and busybox httpd is for tests only. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "helpers/netd/nft.h"
#include "tests/unit/check.h"

#define TABLE "fcvm_t"

static struct in_addr ip4(const char *s)
{
	struct in_addr a;

	CHECK(inet_pton(AF_INET, s, &a) == 1);
	return a;
}

/* Root, in a network namespace of our own, with an nf_tables socket in it. */
static struct nft *fresh_netns(void)
{
	struct nft *n;

	if (geteuid() != 0)
		SKIP("needs root");
	CHECK(unshare(CLONE_NEWNET) == 0);
	n = nft_open();
	CHECK(n);
	return n;
}

static const char host_table_text[] = "table ip fcvm_t {\n"
				      "\tmap pub_ip_tcp {\n"
				      "\t\ttype ipv4_addr . inet_service : ipv4_addr . inet_service\n"
				      "\t}\n"
				      "\n"
				      "\tmap pub_tcp {\n"
				      "\t\ttype inet_service : ipv4_addr . inet_service\n"
				      "\t}\n"
				      "\n"
				      "\tmap pub_ip_udp {\n"
				      "\t\ttype ipv4_addr . inet_service : ipv4_addr . inet_service\n"
				      "\t}\n"
				      "\n"
				      "\tmap pub_udp {\n"
				      "\t\ttype inet_service : ipv4_addr . inet_service\n"
				      "\t}\n"
				      "\n"
				      "\tchain prerouting {\n"
				      "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
				      "\t\tfib daddr type local dnat ip to ip daddr . tcp dport map @pub_ip_tcp\n"
				      "\t\tfib daddr type local dnat ip to tcp dport map @pub_tcp\n"
				      "\t\tfib daddr type local dnat ip to ip daddr . udp dport map @pub_ip_udp\n"
				      "\t\tfib daddr type local dnat ip to udp dport map @pub_udp\n"
				      "\t}\n"
				      "\n"
				      "\tchain output {\n"
				      "\t\ttype nat hook output priority -100; policy accept;\n"
				      "\t\tfib daddr type local dnat ip to ip daddr . tcp dport map @pub_ip_tcp\n"
				      "\t\tfib daddr type local dnat ip to tcp dport map @pub_tcp\n"
				      "\t\tfib daddr type local dnat ip to ip daddr . udp dport map @pub_ip_udp\n"
				      "\t\tfib daddr type local dnat ip to udp dport map @pub_udp\n"
				      "\t}\n"
				      "\n"
				      "\tchain postrouting {\n"
				      "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
				      "\t\tip saddr 127.0.0.0/8 oifname \"fcvm*\" masquerade\n"
				      "\t\tip saddr 10.231.0.0/16 oifname != \"fcvm*\" masquerade\n"
				      "\t}\n"
				      "}\n";

TEST(host_ensure_idempotent)
{
	struct nft *n = fresh_netns();
	char a[8192], b[8192];

	CHECK_EQ(nft_host_ensure(n, TABLE, ip4("10.231.0.0"), 16), 0);
	CHECK_STR(check_sh_out(a, sizeof(a), "nft list table ip " TABLE), host_table_text);
	CHECK_STR(check_sh_out(a, sizeof(a), "nft -j list ruleset | grep -o '\"rule\": {' | wc -l"), "10\n");
	CHECK_STR(check_sh_out(a, sizeof(a), "nft -j list ruleset | grep -o '\"chain\": {' | wc -l"), "3\n");
	CHECK_STR(check_sh_out(a, sizeof(a), "nft -j list ruleset | grep -o '\"map\": {\"family\"' | wc -l"), "4\n");
	check_sh_out(a, sizeof(a), "nft -a list ruleset");
	CHECK_EQ(nft_host_ensure(n, TABLE, ip4("10.231.0.0"), 16), 0);
	CHECK_STR(check_sh_out(b, sizeof(b), "nft -a list ruleset"), a);
	nft_close(n);
}

TEST(host_ensure_odd_prefix)
{
	struct nft *n = fresh_netns();
	char a[8192];

	CHECK_EQ(nft_host_ensure(n, TABLE, ip4("10.231.128.0"), 17), 0);
	CHECK(strstr(check_sh_out(a, sizeof(a), "nft list chain ip " TABLE " postrouting"),
		     "ip saddr 10.231.128.0/17 oifname != \"fcvm*\" masquerade"));
	CHECK_EQ(nft_host_ensure(n, "fcvm_bad", ip4("10.231.0.0"), 33), -EINVAL);
	nft_close(n);
}

struct seen {
	struct pub_port p[16];
	struct in_addr vm[16];
	int n;
};

static int collect(const struct pub_port *p, struct in_addr vm, void *arg)
{
	struct seen *s = arg;

	CHECK(s->n < 16);
	s->p[s->n] = *p;
	s->vm[s->n++] = vm;
	return 0;
}

static bool seen_has(const struct seen *s, const struct pub_port *p, struct in_addr vm)
{
	for (int i = 0; i < s->n; i++)
		if (s->p[i].host_ip.s_addr == p->host_ip.s_addr && s->p[i].host_port == p->host_port &&
		    s->p[i].guest_port == p->guest_port && s->p[i].proto == p->proto && s->vm[i].s_addr == vm.s_addr)
			return true;
	return false;
}

static int stop_at_first(const struct pub_port *p, struct in_addr vm, void *arg)
{
	++*(int *)arg;
	return 42;
}

TEST(host_ports_round_trip)
{
	struct nft *n = fresh_netns();
	struct in_addr vm = ip4("10.231.0.2");
	struct pub_port p[] = {
	    {ip4("0.0.0.0"), 8080, 80, IPPROTO_TCP},
	    {ip4("127.0.0.1"), 8081, 81, IPPROTO_TCP},
	    {ip4("0.0.0.0"), 5353, 53, IPPROTO_UDP},
	    {ip4("192.0.2.7"), 6000, 60, IPPROTO_UDP},
	};
	struct seen s = {0};
	char out[8192];
	int calls = 0;

	CHECK_EQ(nft_host_ensure(n, TABLE, ip4("10.231.0.0"), 16), 0);
	CHECK_EQ(nft_host_ports(n, TABLE, p, 4, vm, true), 0);
	CHECK_EQ(nft_host_port_dump(n, TABLE, collect, &s), 0);
	CHECK_EQ(s.n, 4);
	for (int i = 0; i < 4; i++)
		CHECK(seen_has(&s, &p[i], vm));
	/* the kernel's view, as nft prints it */
	check_sh_out(out, sizeof(out), "nft list table ip " TABLE);
	CHECK(strstr(out, "elements = { 8080 : 10.231.0.2 . 80 }"));
	CHECK(strstr(out, "elements = { 127.0.0.1 . 8081 : 10.231.0.2 . 81 }"));
	CHECK(strstr(out, "elements = { 5353 : 10.231.0.2 . 53 }"));
	CHECK(strstr(out, "elements = { 192.0.2.7 . 6000 : 10.231.0.2 . 60 }"));
	CHECK_EQ(nft_host_port_dump(n, TABLE, stop_at_first, &calls), 42);
	CHECK_EQ(calls, 1);

	CHECK_EQ(nft_host_ports(n, TABLE, p, 4, vm, false), 0);
	s.n = 0;
	CHECK_EQ(nft_host_port_dump(n, TABLE, collect, &s), 0);
	CHECK_EQ(s.n, 0);
	CHECK_EQ(nft_host_ports(n, TABLE, p, 1, vm, false), -ENOENT);
	CHECK_EQ(nft_host_ports(n, TABLE, p, 0, vm, true), 0);
	nft_close(n);
}

TEST(host_ports_duplicate_is_atomic)
{
	struct nft *n = fresh_netns();
	struct in_addr vm = ip4("10.231.0.2"), vm2 = ip4("10.231.0.6");
	struct pub_port a = {ip4("0.0.0.0"), 8080, 80, IPPROTO_TCP};
	struct pub_port batch[] = {
	    {ip4("0.0.0.0"), 9090, 90, IPPROTO_TCP},
	    {ip4("0.0.0.0"), 8080, 81, IPPROTO_TCP}, /* same key as a */
	    {ip4("0.0.0.0"), 9091, 91, IPPROTO_UDP},
	};
	struct pub_port same_port_udp = {ip4("0.0.0.0"), 8080, 80, IPPROTO_UDP};
	struct pub_port bad_proto = {ip4("0.0.0.0"), 1, 1, IPPROTO_ICMP};
	struct seen s = {0};

	CHECK_EQ(nft_host_ensure(n, TABLE, ip4("10.231.0.0"), 16), 0);
	CHECK_EQ(nft_host_ports(n, TABLE, &a, 1, vm, true), 0);
	CHECK_EQ(nft_host_ports(n, TABLE, batch, 3, vm2, true), -EEXIST);
	CHECK_EQ(nft_host_port_dump(n, TABLE, collect, &s), 0);
	CHECK_EQ(s.n, 1);
	CHECK(seen_has(&s, &a, vm));
	/* the same port in the other protocol is another key */
	CHECK_EQ(nft_host_ports(n, TABLE, &same_port_udp, 1, vm2, true), 0);
	CHECK(nft_host_ports(n, TABLE, &bad_proto, 1, vm2, true) < 0);
	nft_close(n);
}

TEST(host_delete)
{
	struct nft *n = fresh_netns();
	struct pub_port a = {ip4("0.0.0.0"), 8080, 80, IPPROTO_TCP};
	char out[256];

	CHECK_EQ(nft_host_delete(n, TABLE), -ENOENT);
	CHECK_EQ(nft_host_ensure(n, TABLE, ip4("10.231.0.0"), 16), 0);
	CHECK_EQ(nft_host_ensure(n, "fcvm_other", ip4("10.232.0.0"), 16), 0);
	CHECK_EQ(nft_host_delete(n, TABLE), 0);
	CHECK_STR(check_sh_out(out, sizeof(out), "nft list tables"), "table ip fcvm_other\n");
	CHECK_EQ(nft_host_delete(n, TABLE), -ENOENT);
	CHECK_EQ(nft_host_ports(n, TABLE, &a, 1, ip4("10.231.0.2"), true), -ENOENT);
	CHECK_EQ(nft_host_port_dump(n, TABLE, collect, &(struct seen){0}), -ENOENT);
	nft_close(n);
}

TEST(vm_table_bridged)
{
	struct nft *n = fresh_netns();
	char out[4096];

	CHECK_EQ(nft_vm_table(n, "fcvm0", "fcvmtap0", ip4("10.254.254.2"), false), 0);
	CHECK_STR(check_sh_out(out, sizeof(out), "nft list table ip fcvm"),
		  "table ip fcvm {\n"
		  "\tchain prerouting {\n"
		  "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
		  "\t\tiifname \"fcvm0\" dnat to 10.254.254.2\n"
		  "\t}\n"
		  "\n"
		  "\tchain postrouting {\n"
		  "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
		  "\t\toifname \"fcvm0\" masquerade\n"
		  "\t}\n"
		  "}\n");
	CHECK_EQ(nft_vm_table(n, "fcvm0", "fcvmtap0", ip4("10.254.254.2"), false), -EEXIST);
	CHECK_EQ(nft_vm_table(n, "a-name-longer-than-ifnamsiz", "fcvmtap0", ip4("10.254.254.2"), false), -EINVAL);
	nft_close(n);
}

TEST(vm_table_rootless)
{
	struct nft *n = fresh_netns();
	char out[4096];

	CHECK_EQ(nft_vm_table(n, "fcvmp0", "fcvmtap0", ip4("10.254.254.2"), true), 0);
	CHECK_STR(check_sh_out(out, sizeof(out), "nft list table ip fcvm"),
		  "table ip fcvm {\n"
		  "\tchain prerouting {\n"
		  "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
		  "\t\tiifname \"fcvmp0\" dnat to 10.254.254.2\n"
		  "\t}\n"
		  "\n"
		  "\tchain output {\n"
		  "\t\ttype nat hook output priority -100; policy accept;\n"
		  "\t\tip daddr 127.0.0.1 dnat to 10.254.254.2\n"
		  "\t}\n"
		  "\n"
		  "\tchain postrouting {\n"
		  "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
		  "\t\toifname \"fcvmp0\" masquerade\n"
		  "\t\tip saddr 127.0.0.0/8 oifname \"fcvmtap0\" masquerade\n"
		  "\t}\n"
		  "}\n");
	nft_close(n);
}

TEST(fdopen)
{
	struct nft *n = fresh_netns();
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);

	nft_close(n);
	CHECK(fd >= 0);
	n = nft_fdopen(fd); /* unbound: nft_fdopen binds it */
	CHECK(n);
	CHECK_EQ(nft_host_ensure(n, TABLE, ip4("10.231.0.0"), 16), 0);
	CHECK_EQ(nft_host_delete(n, TABLE), 0);
	nft_close(n);
}

/* ---- real traffic: host netns H, VM netns V, guest netns G (docs/networking.md) ---- */

static char nsH[32], nsV[32], nsG[32], webdir[64];

static void topo_down(void)
{
	/* only the processes we started in our own namespaces (the httpds) */
	check_sh("for ns in %s %s %s; do pids=$(ip netns pids $ns 2>/dev/null); [ -n \"$pids\" ] && kill $pids; "
		 "ip netns del $ns 2>/dev/null; done; rm -rf %s",
		 nsH, nsV, nsG, webdir);
}

static void topo_up(void)
{
	CHECK(
	    check_sh(
		"set -e; for n in %1$s %2$s %3$s; do ip netns add $n; done\n"
		"ip -n %1$s link set lo up\n"
		"ip -n %1$s link add up0 type veth peer name up1\n"
		"ip -n %1$s addr add 198.51.100.5/24 dev up0; ip -n %1$s link set up0 up\n"
		"ip -n %1$s route add default via 198.51.100.1\n"
		"ip -n %1$s link add fcvmh0 type veth peer name fcvm0 netns %2$s\n"
		"ip -n %1$s addr add 10.231.0.1/30 dev fcvmh0; ip -n %1$s link set fcvmh0 up\n"
		"ip netns exec %1$s sysctl -qw net.ipv4.conf.fcvmh0.route_localnet=1 "
		"net.ipv4.conf.fcvmh0.forwarding=1\n"
		"ip -n %2$s addr add 10.231.0.2/30 dev fcvm0; ip -n %2$s link set fcvm0 up; ip -n %2$s link set lo up\n"
		"ip -n %2$s route add default via 10.231.0.1\n"
		"ip -n %2$s link add fcvmtap0 type veth peer name eth0 netns %3$s\n"
		"ip -n %2$s addr add 10.254.254.1/30 dev fcvmtap0; ip -n %2$s link set fcvmtap0 up\n"
		"ip netns exec %2$s sysctl -qw net.ipv4.conf.fcvm0.forwarding=1 net.ipv4.conf.fcvmtap0.forwarding=1\n"
		"ip -n %3$s addr add 10.254.254.2/30 dev eth0; ip -n %3$s link set eth0 up; ip -n %3$s link set lo up\n"
		"ip -n %3$s route add default via 10.254.254.1\n"
		"mkdir -p %4$s/guest %4$s/host; echo guest-says-hi > %4$s/guest/index.html\n"
		"echo host-says-hi > %4$s/host/index.html\n"
		"mkdir -p %4$s/guest81; echo guest81-says-hi > %4$s/guest81/index.html\n"
		"ip netns exec %3$s busybox httpd -p 80 -h %4$s/guest\n"
		"ip netns exec %3$s busybox httpd -p 81 -h %4$s/guest81\n"
		"ip netns exec %1$s busybox httpd -p 198.51.100.5:8000 -h %4$s/host\n",
		nsH, nsV, nsG, webdir) == 0);
}

/* Runs fn with an nft socket made in the named namespace (a child joins it); its result. */
static int in_netns(const char *ns, int (*fn)(struct nft *n, void *arg), void *arg)
{
	char path[96];
	pid_t pid;
	int st = 0;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		struct nft *n;
		int ret;

		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			_exit(250);
		close(fd);
		n = nft_open();
		if (!n)
			_exit(251);
		ret = fn(n, arg);
		nft_close(n);
		fflush(NULL);
		_exit(-ret & 0xff);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? -WEXITSTATUS(st) : -255;
}

static struct pub_port web[4];

static int host_setup(struct nft *n, void *arg)
{
	int ret = nft_host_ensure(n, TABLE, ip4("10.231.0.0"), 16);

	return ret ? ret : nft_host_ports(n, TABLE, web, 4, ip4("10.231.0.2"), true);
}

static int host_unpublish(struct nft *n, void *arg)
{
	return nft_host_ports(n, TABLE, web, 4, ip4("10.231.0.2"), false);
}

static int vm_setup(struct nft *n, void *arg)
{
	return nft_vm_table(n, "fcvm0", "fcvmtap0", ip4("10.254.254.2"), false);
}

/* curl from ns to url: 0 when the body is want, retried a few times (bounded) */
static int fetch(const char *ns, const char *url, const char *want, int tries)
{
	for (int i = 0; i < tries; i++)
		if (check_sh("ip netns exec %s curl -s -m 2 %s | grep -qx %s", ns, url, want) == 0)
			return 0;
	return -1;
}

static void traffic_body(void)
{
	/* 8080 on every address, 8081 on 198.51.100.5 only */
	web[0] = (struct pub_port){ip4("0.0.0.0"), 8080, 80, IPPROTO_TCP};
	web[1] = (struct pub_port){ip4("198.51.100.5"), 8081, 80, IPPROTO_TCP};
	/* 8082 on every address to guest port 80, and on 198.51.100.5 to 81: the address wins */
	web[2] = (struct pub_port){ip4("0.0.0.0"), 8082, 80, IPPROTO_TCP};
	web[3] = (struct pub_port){ip4("198.51.100.5"), 8082, 81, IPPROTO_TCP};
	topo_up();
	CHECK_EQ(in_netns(nsV, vm_setup, NULL), 0);
	CHECK_EQ(in_netns(nsH, host_setup, NULL), 0);

	/* the guest's server is up (bounded wait), directly from the VM namespace */
	CHECK_EQ(fetch(nsV, "http://10.254.254.2/", "guest-says-hi", 10), 0);
	/* published on every address: loopback (output chain) and the uplink's address */
	CHECK_EQ(fetch(nsH, "http://127.0.0.1:8080/", "guest-says-hi", 3), 0);
	CHECK_EQ(fetch(nsH, "http://198.51.100.5:8080/", "guest-says-hi", 3), 0);
	/* published on 198.51.100.5 only */
	CHECK_EQ(fetch(nsH, "http://198.51.100.5:8081/", "guest-says-hi", 3), 0);
	CHECK(fetch(nsH, "http://127.0.0.1:8081/", "guest-says-hi", 1) != 0);
	CHECK_EQ(fetch(nsH, "http://198.51.100.5:8082/", "guest81-says-hi", 3), 0);
	CHECK_EQ(fetch(nsH, "http://127.0.0.1:8082/", "guest-says-hi", 3), 0);
	/* egress: the guest reaches a server on the host's uplink address */
	CHECK_EQ(fetch(nsG, "http://198.51.100.5:8000/", "host-says-hi", 3), 0);

	CHECK_EQ(in_netns(nsH, host_unpublish, NULL), 0);
	CHECK(fetch(nsH, "http://127.0.0.1:8080/", "guest-says-hi", 1) != 0);
	CHECK(fetch(nsH, "http://198.51.100.5:8081/", "guest-says-hi", 1) != 0);
}

TEST(real_traffic_bridged)
{
	pid_t pid;
	int st = 0;

	if (geteuid() != 0)
		SKIP("needs root");
	if (check_sh("command -v busybox curl ip >/dev/null"))
		SKIP("needs busybox, curl and ip");
	snprintf(nsH, sizeof(nsH), "fcvmtH%d", (int)getpid());
	snprintf(nsV, sizeof(nsV), "fcvmtV%d", (int)getpid());
	snprintf(nsG, sizeof(nsG), "fcvmtG%d", (int)getpid());
	snprintf(webdir, sizeof(webdir), "/tmp/fcvm-nft-web.%d", (int)getpid());
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		traffic_body();
		fflush(NULL);
		_exit(0);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	topo_down();
	fflush(NULL);
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}
