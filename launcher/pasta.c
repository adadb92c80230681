/* pasta (Debian's passt package) for a rootless VM network: joined to the user and network
 * namespaces netd made for the VM (fds from the request), as the uid that owns them, binding
 * the VM's published ports on the host. The ports are parsed and checked here as netd checks
 * them (common/ports.c, the range of netd's policy); pasta's command line is built from the
 * parsed values only. Tied to the VM: the launcher stops it when the VMM exits. Ready when
 * it writes its pid (--pid, into a pipe), after its ports are bound; a port it cannot bind
 * makes it exit first, and its own message becomes the error. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/ports.h"
#include "common/util.h"
#include "launcher/launcher.h"

#define PASTA_READY_MS 5000

/* "[IP/]HOST:GUEST,..." for proto, or "none" */
static void port_spec(const struct pub_port *p, size_t n, uint8_t proto, char *out, size_t len)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char ip[INET_ADDRSTRLEN + 1] = "";
		if (p[i].proto != proto)
			continue;
		if (p[i].host_ip.s_addr != INADDR_ANY) {
			inet_ntop(AF_INET, &p[i].host_ip, ip, sizeof(ip) - 1);
			strcat(ip, "/");
		}
		int k =
		    snprintf(out + used, len - used, "%s%s%u:%u", used ? "," : "", ip, p[i].host_port, p[i].guest_port);
		if (k < 0 || (size_t)k >= len - used)
			break;
		used += (size_t)k;
	}
	if (!used)
		snprintf(out, len, "none");
}

/* pasta's argv (after argv[0]) as NUL-separated strings; fds: 3 userns, 4 netns, 5 pid pipe. */
static uint32_t pasta_args(char *buf, size_t len, const char *tcp, const char *udp)
{
	const char *const args[] = {"--config-net",
				    "-q",
				    "-f",
				    "-I",
				    "fcvmp0",
				    "-a",
				    "10.0.2.15",
				    "-n",
				    "24",
				    "-g",
				    "10.0.2.2",
				    "--dns-forward",
				    "10.0.2.3",
				    "--userns",
				    "/proc/self/fd/3",
				    "--netns",
				    "/proc/self/fd/4",
				    "--pid",
				    "/proc/self/fd/5",
				    "-t",
				    tcp,
				    "-u",
				    udp,
				    "-T",
				    "none",
				    "-U",
				    "none"};
	size_t used = 0;
	for (size_t i = 0; i < ARRAY_LEN(args); i++) {
		size_t k = strlen(args[i]) + 1;
		if (used + k > len)
			return 0;
		memcpy(buf + used, args[i], k);
		used += k;
	}
	return (uint32_t)ARRAY_LEN(args);
}

/* Wait (bounded) for pasta's pid line; its messages on failure. */
static pid_t wait_ready(pid_t child, int pid_r, int err_r, char *msg, size_t len)
{
	char buf[32] = "";
	size_t got = 0;
	uint64_t until = now_mono_ms() + PASTA_READY_MS;
	for (;;) {
		struct pollfd p = {.fd = pid_r, .events = POLLIN};
		uint64_t now = now_mono_ms();
		if (now >= until || poll(&p, 1, (int)(until - now)) <= 0)
			break;
		ssize_t n = read(pid_r, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break; /* it exited (its message, if any, is below) */
		got += (size_t)n;
		if (memchr(buf, '\n', got))
			return child;
	}
	fcntl(err_r, F_SETFL, O_NONBLOCK);
	ssize_t n = read(err_r, msg, len - 1);
	msg[n > 0 ? n : 0] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
	if (!msg[0])
		snprintf(msg, len, "it did not become ready within %d s", PASTA_READY_MS / 1000);
	kill(child, SIGKILL); /* reaped with the launcher's other children */
	return -1;
}

pid_t pasta_spawn(struct launcher *L, const struct pmsg *req, struct pmsg *rep)
{
	static struct spawn_order o;
	struct pub_port ports[PORTS_MAX];
	size_t n = 0;
	char tcp[1024], udp[1024], msg[256];
	int pp[2] = {-1, -1}, ep[2] = {-1, -1};
	if (L->ls->exe_fd[PROG_PASTA] < 0) {
		pmsg_set_error(rep, PE_NOT_FOUND, "rootless networking needs pasta: apt-get install passt");
		return -1;
	}
	if (ports_parse(&req->body, L->port_min, L->port_max, ports, &n, msg, sizeof(msg)) < 0) {
		launcher_refuse(rep, PE_DENIED, "pasta for %s: %s", prec_str(&req->body, "vm"), msg);
		return -1;
	}
	port_spec(ports, n, IPPROTO_TCP, tcp, sizeof(tcp));
	port_spec(ports, n, IPPROTO_UDP, udp, sizeof(udp));
	memset(&o, 0, sizeof(o));
	o.prog = PROG_PASTA;
	o.nargs = pasta_args(o.args, sizeof(o.args) - 1, tcp, udp);
	o.out_fd = 3; /* its messages: the error pipe */
	if (pipe2(pp, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
		pmsg_set_error(rep, PE_INTERNAL, "pipe: %s", strerror(errno));
		close_fdp(&pp[0]);
		close_fdp(&pp[1]);
		return -1;
	}
	int fds[4] = {req->fds[0], req->fds[1], pp[1], ep[1]}; /* userns 3, netns 4, pid pipe 5, messages */
	pid_t pid = spawner_ask(L->spawner, &o, fds, 4, msg, sizeof(msg));
	close_fdp(&pp[1]);
	close_fdp(&ep[1]);
	if (pid > 0)
		pid = wait_ready(pid, pp[0], ep[0], msg, sizeof(msg));
	close_fdp(&pp[0]);
	close_fdp(&ep[0]);
	if (pid < 0) {
		pmsg_set_error(rep, PE_INTERNAL, "pasta: %s", msg);
		return -1;
	}
	log_info("started pasta for %s as pid %d", prec_str(&req->body, "vm"), (int)pid);
	prec_set_uint(rep, &rep->body, "pid", (uint64_t)pid);
	return pid;
}
