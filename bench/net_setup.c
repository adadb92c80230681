/* Per-VM network setup and teardown by a real fcvm-netd (system mode), timed from the
 * supervisor's side of its channel: N net_create calls (one published tcp port each, all N
 * VMs alive at once), then N net_destroy calls. Runs in a private network namespace, so the
 * host is untouched. Root only.
 *
 *   net_setup NETD_PATH [N] [-v]
 *
 * Prints `key value` summary lines (µs); -v also prints `create_us i t` / `destroy_us i t`. */
#include <errno.h>
#include <net/if.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "proto/chan.h"

#define FIRST_PORT 20000
#define GROUP	   10 /* creates compared at the start and at the end */

struct vm_net {
	int tap;
	char host_if[IF_NAMESIZE];
};

static void die(const char *what)
{
	fprintf(stderr, "net_setup: %s\n", what);
	exit(1);
}

static void lo_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		die("lo flags");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		die("lo up");
	close(s);
}

static pid_t start_netd(const char *path, int *chan)
{
	int sv[2];
	struct passwd *pw = getpwnam("fcvm-netd");
	if (!pw)
		die("no user fcvm-netd");
	if (chan_pair(sv) < 0)
		die("socketpair");
	char uid[16], gid[16], tag[16];
	snprintf(uid, sizeof(uid), "%u", (unsigned)pw->pw_uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)pw->pw_gid);
	snprintf(tag, sizeof(tag), "b%u", (unsigned)getpid() % 1000000);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(sv[1], 3);
		execl(path, path, "--mode", "system", "--uid", uid, "--gid", gid, "--instance", tag, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	*chan = sv[0];
	return pid;
}

/* One request, one reply; the reply (success or error) is left in rep. */
static void call(int chan, struct pmsg *req, struct pmsg *rep)
{
	struct perr e;
	if (chan_send_msg(chan, req, &e) < 0)
		die("send");
	if (chan_recv_msg(chan, rep, &e) != 1 || e.code != PE_OK)
		die("receive");
}

static void ping(int chan)
{
	struct pmsg req, rep;
	pmsg_init(&req, PK_REQUEST, OP_PING, 1);
	call(chan, &req, &rep);
	if (rep.err_code != PE_OK)
		die("ping refused");
	pmsg_free(&rep);
	pmsg_free(&req);
}

static uint64_t net_create(int chan, unsigned i, struct vm_net *v)
{
	struct pmsg req, rep;
	char vm[32];
	snprintf(vm, sizeof(vm), "vm%u", i);
	pmsg_init(&req, PK_REQUEST, OP_NET_CREATE, 100 + i);
	prec_set_str(&req, &req.body, "vm", vm);
	prec_set_str(&req, &req.body, "mode", "bridged");
	struct precord *p = prec_add_record(&req, &req.body, "ports");
	prec_set_uint(&req, p, "host_port", FIRST_PORT + i);
	prec_set_uint(&req, p, "guest_port", 80);
	prec_set_str(&req, p, "proto", "tcp");
	uint64_t t0 = now_mono_ns();
	call(chan, &req, &rep);
	uint64_t dt = now_mono_ns() - t0;
	if (rep.err_code != PE_OK) {
		fprintf(stderr, "net_setup: net_create %u: %s\n", i, rep.err_msg);
		exit(1);
	}
	snprintf(v->host_if, sizeof(v->host_if), "%s", prec_str(&rep.body, "host_if"));
	v->tap = pmsg_take_fd(&rep, 0); /* the tap holds the VM's namespace; netns, userns closed */
	pmsg_free(&rep);
	pmsg_free(&req);
	return dt / 1000;
}

static uint64_t net_destroy(int chan, unsigned i, const struct vm_net *v)
{
	struct pmsg req, rep;
	char vm[32];
	snprintf(vm, sizeof(vm), "vm%u", i);
	pmsg_init(&req, PK_REQUEST, OP_NET_DESTROY, 100000 + i);
	prec_set_str(&req, &req.body, "vm", vm);
	prec_set_str(&req, &req.body, "host_if", v->host_if);
	uint64_t t0 = now_mono_ns();
	call(chan, &req, &rep);
	uint64_t dt = now_mono_ns() - t0;
	if (rep.err_code != PE_OK) {
		fprintf(stderr, "net_setup: net_destroy %u: %s\n", i, rep.err_msg);
		exit(1);
	}
	pmsg_free(&rep);
	pmsg_free(&req);
	return dt / 1000;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t median(const uint64_t *v, size_t n)
{
	uint64_t *s = malloc(n * sizeof(*s));
	if (!s)
		die("memory");
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_u64);
	uint64_t m = s[n / 2];
	free(s);
	return m;
}

static void summarise(const uint64_t *cr, const uint64_t *de, unsigned n)
{
	uint64_t *tot = malloc(n * sizeof(*tot));
	if (!tot)
		die("memory");
	for (unsigned i = 0; i < n; i++)
		tot[i] = cr[i] + de[i];
	unsigned g = n < GROUP ? n : GROUP;
	uint64_t first = median(cr, g), last = median(cr + n - g, g);
	printf("vms %u\n", n);
	printf("median_create_us %llu\n", (unsigned long long)median(cr, n));
	printf("median_destroy_us %llu\n", (unsigned long long)median(de, n));
	printf("median_total_us %llu\n", (unsigned long long)median(tot, n));
	printf("first%u_create_us %llu\n", g, (unsigned long long)first);
	printf("last%u_create_us %llu\n", g, (unsigned long long)last);
	printf("last_first_ratio %.2f\n", first ? (double)last / (double)first : 0.0);
	free(tot);
}

int main(int argc, char **argv)
{
	uint64_t n64 = 100;
	bool verbose = argc > 1 && strcmp(argv[argc - 1], "-v") == 0;
	if (verbose)
		argc--;
	if (argc < 2 || (argc > 2 && !parse_uint(argv[2], 10000, &n64)) || n64 == 0) {
		fprintf(stderr, "usage: net_setup NETD_PATH [N] [-v]\n");
		return 2;
	}
	if (geteuid() != 0)
		die("needs root (a private network namespace, netd dropping to fcvm-netd)");
	if (unshare(CLONE_NEWNET) < 0)
		die("unshare(CLONE_NEWNET)");
	lo_up();
	unsigned n = (unsigned)n64;
	int chan;
	pid_t netd = start_netd(argv[1], &chan);
	ping(chan); /* netd is serving (its start-up reconcile done) */

	struct vm_net *vms = calloc(n, sizeof(*vms));
	uint64_t *cr = calloc(n, sizeof(*cr)), *de = calloc(n, sizeof(*de));
	if (!vms || !cr || !de)
		die("memory");
	for (unsigned i = 0; i < n; i++)
		cr[i] = net_create(chan, i, &vms[i]);
	for (unsigned i = 0; i < n; i++)
		de[i] = net_destroy(chan, i, &vms[i]);
	for (unsigned i = 0; i < n; i++)
		close(vms[i].tap);
	close(chan); /* netd exits on end of stream */
	waitpid(netd, NULL, 0);

	if (verbose) {
		for (unsigned i = 0; i < n; i++)
			printf("create_us %u %llu\n", i, (unsigned long long)cr[i]);
		for (unsigned i = 0; i < n; i++)
			printf("destroy_us %u %llu\n", i, (unsigned long long)de[i]);
	}
	summarise(cr, de, n);
	free(vms);
	free(cr);
	free(de);
	return 0;
}
