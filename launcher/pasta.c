/* pasta (Debian's passt package) for a rootless VM network: joined to the user and network
 * namespaces netd made for the VM (fds from the request), as the uid that owns them (netd's),
 * binding the VM's published ports on the host. Tied to the VM: the launcher stops it when
 * the VMM exits. Ready when it writes its pid (--pid, into a pipe), after its ports are bound;
 * a port it cannot bind makes it exit first, and its own message becomes the error. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "policy/sandbox.h"
#include "supervisor/launcher.h"

#define PASTA_READY_MS 5000
#define PASTA_ARGS_MAX 64

int pasta_open_binary(void)
{
	/* Debian's pasta is passt, which re-executes itself as passt.avx2 by path where the CPU
	 * has AVX2: that build is taken directly (it acts as pasta by its argv[0]), so no exec
	 * by path is needed under the launcher's filter. */
	if (__builtin_cpu_supports("avx2")) {
		int fd = open("/usr/bin/passt.avx2", O_PATH | O_CLOEXEC);
		if (fd >= 0)
			return fd;
	}
	static const char *const paths[] = {"/usr/bin/pasta", "/usr/local/bin/pasta", "/usr/sbin/pasta"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		int fd = open(paths[i], O_PATH | O_CLOEXEC);
		if (fd >= 0)
			return fd;
	}
	return -ENOENT;
}

/* "-t" "[IP/]HOST:GUEST,..." for proto, or "none" */
static void port_spec(const struct pmsg *req, const char *proto, char *out, size_t len)
{
	const struct pval *v = prec_get(&req->body, "ports");
	size_t used = 0;
	out[0] = '\0';
	for (uint32_t i = 0; v && i < v->recs.n; i++) {
		const struct precord *p = &v->recs.v[i];
		const char *ip = prec_str(p, "host_ip");
		uint64_t hp = 0, gp = 0;
		if (strcmp(prec_str(p, "proto"), proto) != 0)
			continue;
		prec_uint(p, "host_port", &hp);
		prec_uint(p, "guest_port", &gp);
		int n = snprintf(out + used, len - used, "%s%s%s%u:%u", used ? "," : "", ip ? ip : "", ip ? "/" : "",
				 (unsigned)hp, (unsigned)gp);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
	if (!used)
		snprintf(out, len, "none");
}

static __attribute__((noreturn)) void exec_pasta(const struct launcher_setup *ls, const struct pmsg *req, int pid_w,
						 int err_w)
{
	const struct instance *in = ls->inst;
	char tcp[1024], udp[1024];
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	/* an ignored SIGPIPE survives exec, and this pasta takes a non-default old disposition
	 * for a failure ("Couldn't install signal handlers") */
	signal(SIGPIPE, SIG_DFL);
	setsid(); /* the user's Ctrl-C is the client's to act on */
	port_spec(req, "tcp", tcp, sizeof(tcp));
	port_spec(req, "udp", udp, sizeof(udp));
	/* userns -> 3, netns -> 4, the pid pipe -> 5, its messages -> stderr */
	int hi[3] = {fcntl(req->fds[0], F_DUPFD, 64), fcntl(req->fds[1], F_DUPFD, 64), fcntl(pid_w, F_DUPFD, 64)};
	int exe = fcntl(ls->pasta_exe_fd, F_DUPFD_CLOEXEC, 64);
	if (hi[0] < 0 || hi[1] < 0 || hi[2] < 0 || exe < 0 || dup2(ls->devnull, 0) < 0 || dup2(err_w, 1) < 0 ||
	    dup2(err_w, 2) < 0 || dup2(hi[0], 3) < 0 || dup2(hi[1], 4) < 0 || dup2(hi[2], 5) < 0 ||
	    dup3(exe, 6, O_CLOEXEC) < 0 || syscall(SYS_close_range, 7, ~0U, 0) < 0)
		_exit(126);
	/* the uid that owns the namespaces (netd's); no capabilities on the host */
	int rc = sandbox_drop_caps(&policy_vmm_qemu, in->system_mode, in->helper_uid, in->helper_gid);
	if (rc < 0 || sandbox_no_new_privs() < 0) {
		dprintf(2, "cannot drop privileges: %s\n", strerror(-rc));
		_exit(126);
	}
	char *argv[] = {"pasta",
			"--config-net",
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
			"none",
			NULL};
	char *const envp[] = {NULL};
	syscall(SYS_execveat, 6, "", argv, envp, AT_EMPTY_PATH);
	dprintf(2, "cannot execute pasta: %s\n", strerror(errno));
	_exit(127);
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

pid_t pasta_spawn(const struct launcher_setup *ls, const struct pmsg *req, struct pmsg *rep)
{
	int pp[2], ep[2];
	char msg[256];
	if (ls->pasta_exe_fd < 0) {
		pmsg_set_error(rep, PE_NOT_FOUND, "rootless networking needs pasta: apt-get install passt");
		return -1;
	}
	if (pipe2(pp, O_CLOEXEC) < 0)
		goto fail_pipe;
	if (pipe2(ep, O_CLOEXEC) < 0) {
		close(pp[0]);
		close(pp[1]);
		goto fail_pipe;
	}
	pid_t pid = fork();
	if (pid == 0)
		exec_pasta(ls, req, pp[1], ep[1]);
	close(pp[1]);
	close(ep[1]);
	if (pid > 0)
		pid = wait_ready(pid, pp[0], ep[0], msg, sizeof(msg));
	else
		snprintf(msg, sizeof(msg), "fork: %s", strerror(errno));
	close(pp[0]);
	close(ep[0]);
	if (pid < 0) {
		pmsg_set_error(rep, PE_INTERNAL, "pasta: %s", msg);
		return -1;
	}
	log_info("started pasta for %s as pid %d", prec_str(&req->body, "vm"), (int)pid);
	prec_set_uint(rep, &rep->body, "pid", (uint64_t)pid);
	return pid;
fail_pipe:
	pmsg_set_error(rep, PE_INTERNAL, "pipe: %s", strerror(errno));
	return -1;
}
