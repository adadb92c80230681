/* Baseline for the VM benchmarks: the same QEMU command line fcvm builds (supervisor/
 * qemu_argv.c), the same assets and the same agent protocol, but QEMU started directly by
 * this program with fcvm's settings (VM_CPUS vCPUs, default 1; 512 MiB; the pre-loaded demo image): no
 * supervisor, no launcher, no stored, no sandbox. What `fcvm podman run`
 * costs beyond it is the supervisor's overhead.
 *
 *   vm_direct ASSETS_DIR N    prints, per run, "ready_ms RUN_MS" (VMM start to the agent's
 *                             hello reply; VMM start to `echo hi` done and the VMM gone) */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/assets.h"
#include "common/util.h"
#include "proto/stream.h"
#include "launcher/qemu_argv.h"

#include "bench/direct.h"

static int one_run(const struct assets *a, const char *dir, unsigned long tsc, unsigned cpus, double *ready_ms,
		   double *run_ms)
{
	char qmp[96], agent[96], disk[96], console[96];
	snprintf(console, sizeof(console), "%s/console.log", dir);
	snprintf(qmp, sizeof(qmp), "%s/qmp.sock", dir);
	snprintf(agent, sizeof(agent), "%s/agent.sock", dir);
	snprintf(disk, sizeof(disk), "%s/disk.img", dir);
	unlink(qmp);
	unlink(agent);
	unlink(disk);
	int fds[VFD__COUNT];
	fds[VFD_QMP] = listener(qmp);
	fds[VFD_AGENT] = listener(agent);
	fds[VFD_KERNEL] = open(a->kernel, O_RDONLY);
	fds[VFD_INITRD] = open(a->initramfs, O_RDONLY);
	fds[VFD_ROOTFS] = open(a->rootfs, O_RDONLY);
	fds[VFD_DISK] = open(disk, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fds[VFD_IMAGE] = open(a->demo_image, O_RDONLY);
	fds[VFD_CONSOLE] = open(console, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	fds[VFD_MEM] = memfd_create("ram", 0);
	if (fds[VFD_MEM] >= 0 && ftruncate(fds[VFD_MEM], (off_t)512 << 20) < 0)
		return -1;
	for (int i = 0; i < VFD__COUNT; i++)
		if (fds[i] < 0)
			return -1;
	if (ftruncate(fds[VFD_DISK], 4ll << 30) < 0)
		return -1;
	struct vm_config c = {.cpus = cpus, .mem_mib = 512, .accel = ACCEL_TCG, .tsc_khz = tsc};
	const char *argv[QEMU_ARGV_MAX + 2];
	char buf[8192];
	argv[0] = "qemu-system-x86_64";
	int n = qemu_build_argv(&c, argv + 1, QEMU_ARGV_MAX, buf, sizeof(buf));
	if (n < 0)
		return -1;
	argv[n + 1] = NULL;

	uint64_t t0 = now_mono_ns();
	pid_t pid = spawn_qemu((char **)argv, fds, VFD__COUNT, fds[VFD_CONSOLE]);
	for (int i = 0; i < VFD__COUNT; i++)
		close(fds[i]);
	int s = connect_to(agent);
	if (s < 0)
		return -1;
	struct pmsg m;
	struct perr e;
	pmsg_init(&m, PK_REQUEST, OP_AGENT_HELLO, 1);
	stream_send_msg(s, &m, &e);
	pmsg_free(&m);
	if (skip_to_marker(s) < 0 || stream_recv_msg(s, &m, &e) <= 0)
		return -1;
	pmsg_free(&m);
	*ready_ms = (double)(now_mono_ns() - t0) / 1e6;

	pmsg_init(&m, PK_REQUEST, OP_PROC_START, 2);
	prec_set_uint(&m, &m.body, "session", 1);
	prec_set_str(&m, &m.body, "kind", "run");
	prec_set_str(&m, &m.body, "image", FCVM_DEMO_REF); /* pre-loaded in the rootfs, as fcvm does */
	prec_add_str(&m, &m.body, "argv", "echo");
	prec_add_str(&m, &m.body, "argv", "hi");
	stream_send_msg(s, &m, &e);
	pmsg_free(&m);
	for (;;) { /* until the container's exit */
		if (stream_recv_msg(s, &m, &e) <= 0)
			return -1;
		bool done = m.kind == PK_EVENT && m.op->id == OP_PROC_EXIT;
		if (m.kind == PK_REPLY && m.err_code != PE_OK) {
			fprintf(stderr, "vm_direct: %s\n", m.err_msg);
			return -1;
		}
		pmsg_free(&m);
		if (done)
			break;
	}
	pmsg_init(&m, PK_REQUEST, OP_AGENT_SHUTDOWN, 3);
	stream_send_msg(s, &m, &e);
	pmsg_free(&m);
	int st;
	waitpid(pid, &st, 0);
	*run_ms = (double)(now_mono_ns() - t0) / 1e6;
	close(s);
	unlink(disk);
	return 0;
}

int main(int argc, char **argv)
{
	struct assets a;
	char err[512];
	if (argc != 3 || assets_load(argv[1], &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "usage: vm_direct ASSETS_DIR N (%s)\n", argc == 3 ? err : "");
		return 2;
	}
	uint64_t n;
	if (!parse_uint(argv[2], 1000, &n))
		return 2;
	char dir[] = "/tmp/fcvm-vm-direct.XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	unsigned long tsc = host_tsc_khz();
	uint64_t cpus = 1;
	if (getenv("VM_CPUS") && !parse_uint(getenv("VM_CPUS"), 16, &cpus))
		return 2;
	int rc = 0;
	for (uint64_t i = 0; i < n; i++) {
		double ready, run;
		if (one_run(&a, dir, tsc, (unsigned)cpus, &ready, &run) < 0) {
			fprintf(stderr, "vm_direct: run %llu failed: %s\n", (unsigned long long)i, strerror(errno));
			rc = 1;
			break;
		}
		printf("%.0f %.0f\n", ready, run);
		fflush(stdout);
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
