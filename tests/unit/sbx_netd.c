/* A real fcvm-netd in system mode, fed forged requests (docs/networking.md: "netd checks every
 * request itself"). Each test runs in its own network namespace (unshare(CLONE_NEWNET)) with
 * its own netd and --instance, so nothing here touches the host's links or rules. Every
 * refusal must be an error reply on a channel that still answers ping, with nothing made: no
 * fcvm* link (`ip -j link`), no fcvm table (`nft -j list ruleset`). Root only.
 * Cleanup on failure is the namespace's: a failed CHECK exits the test's child, its channel
 * closes, its netd exits, and the namespace goes with every link and table in it. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "proto/chan.h"
#include "proto/fdkind.h"
#include "tests/unit/check.h"

#define POLL_MS 3000 /* bound on waiting for the kernel to drop a namespace's links */

struct netd {
	pid_t pid;
	int chan;
	char tag[9];
};

/* ---- setup ---- */

static void lo_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	CHECK(s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0);
	ifr.ifr_flags |= IFF_UP;
	CHECK(ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
	close(s);
}

/* Root, a private network namespace, and a netd binary: else SKIP. */
static void enter_private_net(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char path[256];
	snprintf(path, sizeof(path), "%s/fcvm-netd", build);
	if (geteuid() != 0)
		SKIP("needs root");
	if (access(path, X_OK) != 0)
		SKIP("build/fcvm-netd not built");
	if (!getpwnam("fcvm-netd"))
		SKIP("no user fcvm-netd");
	CHECK(unshare(CLONE_NEWNET) == 0);
	lo_up();
}

/* A unique instance tag: 1-8 chars [a-z0-9]. */
static void make_tag(char tag[9], char letter)
{
	snprintf(tag, 9, "%c%u", letter, (unsigned)getpid() % 10000000);
}

static void netd_start(struct netd *d, const char *tag)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char path[256], uid[16], gid[16];
	struct passwd *pw = getpwnam("fcvm-netd");
	int sv[2];
	CHECK(pw != NULL);
	snprintf(path, sizeof(path), "%s/fcvm-netd", build);
	snprintf(uid, sizeof(uid), "%u", (unsigned)pw->pw_uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)pw->pw_gid);
	snprintf(d->tag, sizeof(d->tag), "%s", tag);
	CHECK(chan_pair(sv) == 0);
	d->pid = fork();
	CHECK(d->pid >= 0);
	if (d->pid == 0) {
		dup2(sv[1], 3);
		execl(path, path, "--mode", "system", "--uid", uid, "--gid", gid, "--instance", tag, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	d->chan = sv[0];
}

/* Close the channel (netd exits on end of stream); returns its wait status. */
static int netd_stop(struct netd *d)
{
	int st = 0;
	close(d->chan);
	d->chan = -1;
	CHECK(waitpid(d->pid, &st, 0) == d->pid);
	return st;
}

/* The channel ended where a reply belonged: say how netd ended (a seccomp kill is SIGSYS). */
static void netd_died(struct netd *d)
{
	int st = 0;
	if (waitpid(d->pid, &st, 0) != d->pid)
		return;
	if (WIFSIGNALED(st))
		fprintf(stderr, "netd died of signal %d (%s)\n", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		fprintf(stderr, "netd exited with status %d\n", WEXITSTATUS(st));
}

/* ---- requests ---- */

static void req_create(struct pmsg *m, uint32_t id, const char *vm, const char *mode)
{
	CHECK(pmsg_init(m, PK_REQUEST, OP_NET_CREATE, id) == 0);
	CHECK(prec_set_str(m, &m->body, "vm", vm) == 0);
	CHECK(prec_set_str(m, &m->body, "mode", mode) == 0);
}

static void req_port(struct pmsg *m, const char *host_ip, unsigned host_port, unsigned guest_port)
{
	struct precord *p = prec_add_record(m, &m->body, "ports");
	CHECK(p != NULL);
	if (host_ip)
		CHECK(prec_set_str(m, p, "host_ip", host_ip) == 0);
	CHECK(prec_set_uint(m, p, "host_port", host_port) == 0);
	CHECK(prec_set_uint(m, p, "guest_port", guest_port) == 0);
	CHECK(prec_set_str(m, p, "proto", "tcp") == 0);
}

static void req_destroy(struct pmsg *m, uint32_t id, const char *vm, const char *host_if)
{
	CHECK(pmsg_init(m, PK_REQUEST, OP_NET_DESTROY, id) == 0);
	CHECK(prec_set_str(m, &m->body, "vm", vm) == 0);
	if (host_if)
		CHECK(prec_set_str(m, &m->body, "host_if", host_if) == 0);
}

/* Send req (freed here), read the reply into rep; returns its error code. */
static int call(struct netd *d, struct pmsg *req, struct pmsg *rep)
{
	struct perr e;
	CHECK(chan_send_msg(d->chan, req, &e) == 0);
	pmsg_free(req);
	int r = chan_recv_msg(d->chan, rep, &e);
	if (r != 1)
		netd_died(d);
	CHECK_EQ(r, 1);
	CHECK_EQ(e.code, PE_OK);
	if (rep->err_code != PE_OK)
		fprintf(stderr, "  (netd: %s: %s)\n", proto_err_name(rep->err_code), rep->err_msg);
	return rep->err_code;
}

/* The channel still serves. */
static void expect_ping(struct netd *d)
{
	struct pmsg req, rep;
	CHECK(pmsg_init(&req, PK_REQUEST, OP_PING, 77) == 0);
	CHECK_EQ(call(d, &req, &rep), PE_OK);
	CHECK_EQ(rep.id, 77);
	pmsg_free(&rep);
}

/* A request that must be refused: an error reply, the channel still usable. */
static void expect_refused(struct netd *d, struct pmsg *req, const char *msg_part)
{
	struct pmsg rep;
	int code = call(d, req, &rep);
	CHECK(code != PE_OK);
	CHECK_EQ(rep.nfds, 0);
	if (msg_part)
		CHECK(rep.err_msg && strstr(rep.err_msg, msg_part) != NULL);
	pmsg_free(&rep);
	expect_ping(d);
}

/* ---- what exists (the tools' JSON, spaces removed) ---- */

static char *run_capture(const char *cmd)
{
	static char out[1 << 20];
	size_t n = 0;
	int c;
	FILE *f = popen(cmd, "r");
	CHECK(f != NULL);
	while ((c = fgetc(f)) != EOF && n < sizeof(out) - 1)
		if (c != ' ' && c != '\n')
			out[n++] = (char)c;
	out[n] = '\0';
	CHECK(pclose(f) == 0);
	return out;
}

static bool link_exists(const char *name)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"ifname\":\"%s\"", name);
	return strstr(run_capture("ip -j link"), pat) != NULL;
}

static bool any_fcvm_link(void)
{
	return strstr(run_capture("ip -j link"), "\"ifname\":\"fcvm") != NULL;
}

static bool any_fcvm_table(void)
{
	return strstr(run_capture("nft -j list ruleset"), "\"name\":\"fcvm") != NULL;
}

/* Is port anywhere in the instance's maps (an element keyed by it)? */
static bool port_published(const char *tag, unsigned port)
{
	char cmd[128], key[32], ipkey[32];
	snprintf(cmd, sizeof(cmd), "nft -j list table ip fcvm_%s 2>/dev/null || true", tag);
	snprintf(key, sizeof(key), "[%u,", port);	 /* pub_tcp: [port, {concat: [addr, port]}] */
	snprintf(ipkey, sizeof(ipkey), ",%u]},{", port); /* pub_ip_tcp: [{concat: [ip, port]}, ...] */
	const char *out = run_capture(cmd);
	return strstr(out, key) || strstr(out, ipkey);
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Bounded wait for a kernel-side effect we cannot be told about (namespace teardown is
 * asynchronous). */
static bool poll_until(bool (*cond)(const void *), const void *arg)
{
	struct timespec t0, nap = {0, 10 * 1000 * 1000};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!cond(arg)) {
		if (elapsed_ms(&t0) > POLL_MS)
			return false;
		nanosleep(&nap, NULL);
	}
	return true;
}

static bool link_gone(const void *name)
{
	return !link_exists(name);
}

static bool no_fcvm_link(const void *unused)
{
	(void)unused;
	return !any_fcvm_link();
}

static bool no_fcvm_state(const void *unused)
{
	return !any_fcvm_link() && !any_fcvm_table();
}

static void expect_nothing_made(void)
{
	CHECK(!any_fcvm_link());
	CHECK(!any_fcvm_table());
}

/* ---- a successful create ---- */

struct vm_net {
	char host_if[IF_NAMESIZE];
	int tap, netns, userns;
};

static int create_vm(struct netd *d, const char *vm, unsigned host_port, struct vm_net *v)
{
	struct pmsg req, rep;
	req_create(&req, 10, vm, "bridged");
	if (host_port)
		req_port(&req, NULL, host_port, 80);
	int code = call(d, &req, &rep);
	if (code == PE_OK) {
		CHECK_EQ(rep.nfds, 3);
		const char *hif = prec_str(&rep.body, "host_if");
		CHECK(hif != NULL);
		snprintf(v->host_if, sizeof(v->host_if), "%s", hif);
		v->tap = pmsg_take_fd(&rep, 0);
		v->netns = pmsg_take_fd(&rep, 1);
		v->userns = pmsg_take_fd(&rep, 2);
	}
	pmsg_free(&rep);
	return code;
}

static void close_vm(struct vm_net *v)
{
	close(v->tap);
	close(v->netns);
	close(v->userns);
	v->tap = v->netns = v->userns = -1;
}

static int destroy_vm(struct netd *d, const char *vm, const char *host_if)
{
	struct pmsg req, rep;
	req_destroy(&req, 20, vm, host_if);
	int code = call(d, &req, &rep);
	pmsg_free(&rep);
	return code;
}

/* ---- tests ---- */

static void expect_vm_made(const char *tag, const struct vm_net *v, unsigned port)
{
	char table[32];
	CHECK(fd_is_kind(v->tap, FDK_TAP));
	CHECK(fd_is_kind(v->netns, FDK_NETNS));
	CHECK(fd_is_kind(v->userns, FDK_USERNS));
	CHECK(strncmp(v->host_if, "fcvmh", 5) == 0);
	CHECK(link_exists(v->host_if));
	snprintf(table, sizeof(table), "\"name\":\"fcvm_%s\"", tag);
	CHECK(strstr(run_capture("nft -j list ruleset"), table) != NULL);
	CHECK(port_published(tag, port));
}

/* Two VMs: one whose VMM "exits" (its fds closed, then net_destroy), one destroyed while
 * alive; then nothing of the instance is left. */
TEST(create_destroy_lifecycle)
{
	struct netd d = {0};
	struct vm_net a, b;
	char tag[9];
	enter_private_net();
	make_tag(tag, 'l');
	netd_start(&d, tag);
	expect_ping(&d);
	CHECK_EQ(create_vm(&d, "vma", 23456, &a), PE_OK);
	expect_vm_made(tag, &a, 23456);
	CHECK_EQ(create_vm(&d, "vmb", 23466, &b), PE_OK);
	expect_vm_made(tag, &b, 23466);
	CHECK(strcmp(a.host_if, b.host_if) != 0);

	/* the tap holds the namespace: closing it takes the veth pair, host end included */
	close_vm(&b);
	CHECK(poll_until(link_gone, b.host_if));
	CHECK(link_exists(a.host_if));
	CHECK_EQ(destroy_vm(&d, "vmb", b.host_if), PE_OK);
	CHECK(!port_published(tag, 23466));
	CHECK(port_published(tag, 23456));

	CHECK_EQ(destroy_vm(&d, "vma", a.host_if), PE_OK);
	CHECK(!port_published(tag, 23456));
	close_vm(&a);
	CHECK(poll_until(link_gone, a.host_if));
	/* no VM left: the instance's table went with the last destroy */
	CHECK(!any_fcvm_table());
	expect_nothing_made();
	expect_ping(&d);
	netd_stop(&d);
}

TEST(destroy_foreign_links_refused)
{
	struct netd d = {0};
	char tag[9];
	enter_private_net();
	make_tag(tag, 'f');
	/* links netd did not make: a real eth0 (dummy) and an fcvm-looking veth without alias */
	CHECK(
	    system("ip link add eth0 type veth peer name eth0p && ip link add fcvmh999 type veth peer name fcvmx999") ==
	    0);
	netd_start(&d, tag);
	expect_ping(&d);
	const char *names[] = {"lo", "eth0", "fcvmh999", "fcvmx999"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct pmsg req;
		req_destroy(&req, 30 + (uint32_t)i, "vm1", names[i]);
		expect_refused(&d, &req, NULL);
		CHECK(link_exists(names[i]));
	}
	CHECK(system("ip link del fcvmh999") == 0);
	expect_nothing_made();
	netd_stop(&d);
}

TEST(destroy_other_vms_link_refused)
{
	struct netd d = {0};
	struct vm_net v;
	char tag[9];
	enter_private_net();
	make_tag(tag, 'o');
	netd_start(&d, tag);
	CHECK_EQ(create_vm(&d, "vma", 23457, &v), PE_OK);
	struct pmsg req;
	req_destroy(&req, 40, "vmb", v.host_if);
	expect_refused(&d, &req, NULL);
	CHECK(link_exists(v.host_if));
	CHECK(port_published(tag, 23457));
	CHECK_EQ(destroy_vm(&d, "vma", v.host_if), PE_OK);
	close_vm(&v);
	CHECK(poll_until(link_gone, v.host_if));
	netd_stop(&d);
}

TEST(bad_ports_refused)
{
	struct netd d = {0};
	struct pmsg req;
	char tag[9];
	enter_private_net();
	make_tag(tag, 'p');
	netd_start(&d, tag);
	expect_ping(&d);

	/* privileged: outside the policy's range */
	req_create(&req, 50, "vm1", "bridged");
	req_port(&req, NULL, 80, 80);
	expect_refused(&d, &req, NULL);
	expect_nothing_made();

	/* the same host port twice in one request */
	req_create(&req, 51, "vm1", "bridged");
	req_port(&req, NULL, 23458, 80);
	req_port(&req, NULL, 23458, 81);
	expect_refused(&d, &req, NULL);
	expect_nothing_made();

	/* a host_ip that is not this host's */
	req_create(&req, 52, "vm1", "bridged");
	req_port(&req, "203.0.113.9", 23459, 80);
	expect_refused(&d, &req, NULL);
	expect_nothing_made();
	netd_stop(&d);
}

TEST(port_bound_by_someone_refused)
{
	struct netd d = {0};
	struct pmsg req;
	char tag[9];
	enter_private_net();
	make_tag(tag, 'b');
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(23460)};
	CHECK(s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(s, 1) == 0);
	netd_start(&d, tag);
	req_create(&req, 60, "vm1", "bridged");
	req_port(&req, NULL, 23460, 80);
	expect_refused(&d, &req, "23460");
	expect_nothing_made();
	close(s);
	netd_stop(&d);
}

TEST(modes)
{
	struct netd d = {0};
	struct pmsg req, rep;
	char tag[9];
	enter_private_net();
	make_tag(tag, 'm');
	netd_start(&d, tag);
	req_create(&req, 70, "vm1", "foo");
	expect_refused(&d, &req, NULL);
	expect_nothing_made();
	/* rootless is allowed in system mode too: the namespace and tap, nothing on the host */
	req_create(&req, 71, "vm2", "rootless");
	CHECK_EQ(call(&d, &req, &rep), PE_OK);
	CHECK_EQ(rep.nfds, 3);
	CHECK(fd_is_kind(rep.fds[0], FDK_TAP));
	CHECK(!prec_has(&rep.body, "host_if"));
	expect_nothing_made();
	pmsg_free(&rep);
	expect_ping(&d);
	netd_stop(&d);
}

/* The raw frame of a net_create whose vm field is vm_len bytes of 'a'. */
static size_t forge_create(unsigned char *buf, size_t cap, size_t vm_len)
{
	static const unsigned char head[] = {0x96, 0x01, 0x00, 0xaa, 'n',  'e',	 't',  '_', 'c', 'r',
					     'e',  'a',	 't',  'e',  0x0c, 0x82, 0xa2, 'v', 'm'};
	static const unsigned char tail[] = {0xa4, 'm', 'o', 'd', 'e', 0xa7, 'b', 'r', 'i', 'd', 'g', 'e', 'd', 0xc0};
	size_t n = 0;
	CHECK(sizeof(head) + 3 + vm_len + sizeof(tail) <= cap);
	memcpy(buf, head, sizeof(head));
	n += sizeof(head);
	buf[n++] = 0xda; /* str 16 */
	buf[n++] = (unsigned char)(vm_len >> 8);
	buf[n++] = (unsigned char)vm_len;
	memset(buf + n, 'a', vm_len);
	n += vm_len;
	memcpy(buf + n, tail, sizeof(tail));
	return n + sizeof(tail);
}

TEST(oversize_vm_field)
{
	struct netd d = {0};
	struct pmsg rep;
	struct perr e;
	static unsigned char buf[8192];
	char tag[9];
	enter_private_net();
	make_tag(tag, 'v');
	netd_start(&d, tag);
	/* over the schema's 32 bytes: an invalid body, refused on a channel that stays */
	size_t len = forge_create(buf, sizeof(buf), 100);
	CHECK(chan_send(d.chan, buf, len, NULL, 0) == 0);
	CHECK_EQ(chan_recv_msg(d.chan, &rep, &e), 1);
	CHECK_EQ(rep.err_code, PE_INVALID);
	CHECK_EQ(rep.id, 12);
	pmsg_free(&rep);
	expect_ping(&d);
	expect_nothing_made();
	/* over PROTO_MAX_STR: a malformed frame; netd closes the channel and exits, no crash */
	len = forge_create(buf, sizeof(buf), 5000);
	CHECK(chan_send(d.chan, buf, len, NULL, 0) == 0);
	char c;
	CHECK_EQ(read(d.chan, &c, 1), 0);
	int st = netd_stop(&d);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	expect_nothing_made();
}

TEST(unexpected_fd_refused)
{
	struct netd d = {0};
	struct pmsg req, rep;
	struct perr e;
	unsigned char buf[512];
	size_t len;
	char tag[9];
	enter_private_net();
	make_tag(tag, 'u');
	netd_start(&d, tag);
	req_create(&req, 80, "vm1", "bridged");
	req_port(&req, NULL, 23461, 80);
	CHECK_EQ(pmsg_encode(&req, buf, sizeof(buf), &len, &e), PE_OK);
	pmsg_free(&req);
	/* net_create takes no fds: chan_send_msg would not send one, a hostile peer does */
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK(chan_send(d.chan, buf, len, &fd, 1) == 0);
	close(fd);
	CHECK_EQ(chan_recv_msg(d.chan, &rep, &e), 1);
	CHECK_EQ(rep.err_code, PE_INVALID);
	CHECK_EQ(rep.nfds, 0);
	pmsg_free(&rep);
	expect_ping(&d);
	expect_nothing_made();
	netd_stop(&d);
}

/* netd killed with a create in flight, at a few points of its work; a new netd of the same
 * instance must leave nothing of it after its start-up reconcile. */
TEST(killed_mid_create_leaves_nothing)
{
	static const unsigned delays_us[] = {0, 200, 1000, 3000};
	char tag[9];
	enter_private_net();
	make_tag(tag, 'k');
	for (size_t i = 0; i < sizeof(delays_us) / sizeof(delays_us[0]); i++) {
		struct netd d = {0};
		struct pmsg req;
		struct perr e;
		netd_start(&d, tag);
		expect_ping(&d);
		req_create(&req, 90, "vm1", "bridged");
		req_port(&req, NULL, 23462, 80);
		CHECK(chan_send_msg(d.chan, &req, &e) == 0);
		pmsg_free(&req);
		if (delays_us[i]) /* where in the create the kill lands, not a readiness wait */
			usleep(delays_us[i]);
		CHECK(kill(d.pid, SIGKILL) == 0);
		int st = netd_stop(&d);
		CHECK(WIFSIGNALED(st));
		/* a kill that landed after the reply left the VM's fds in the closed channel: the
		 * kernel releases them, and the namespace with its veth goes, asynchronously; the
		 * next netd's start-up reconcile removes what is left once the link is gone */
		CHECK(poll_until(no_fcvm_link, NULL));

		netd_start(&d, tag);
		expect_ping(&d); /* answered once its start-up reconcile is done */
		if (!poll_until(no_fcvm_state, NULL)) {
			fprintf(stderr, "left after a kill %u us into a create:\n", delays_us[i]);
			(void)!system("ip link | grep fcvm; nft list ruleset");
			CHECK(!"state left");
		}
		CHECK(!port_published(tag, 23462));
		netd_stop(&d);
	}
}
