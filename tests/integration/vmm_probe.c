/* it_vmm_probe TARGET_PID [UID]: runs it_vmm_probe_inside (beside it) in a VMM's sandbox,
 * through the launcher's own spawner and QEMU jail (launcher/vmm_jail.c: its namespaces,
 * root, rlimits, the vmm_qemu filter), as UID (system mode; default: the user, rootless
 * mode), which from in there tries to reach TARGET_PID, another VM's QEMU. It prints what
 * the inside saw, one "key value" a line:
 *   proc_entries N     processes it can see in its /proc (only itself: 1)
 *   kill_target ERRNO  kill(TARGET_PID, 0) (ESRCH: no such process in its namespace)
 *   kill_all ERRNO     kill(-1, SIGKILL) (ESRCH: nothing to signal)
 *   ptrace_status S    how ptrace(PTRACE_SEIZE, TARGET_PID) ended it (killed: SIGSYS)
 * tests/integration/neighbours.sh runs it against two real VMs. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "common/vmconfig.h"
#include "launcher/launcher.h"

int main(int argc, char **argv)
{
	uint64_t target = 0, uid = 0;
	if (argc < 2 || argc > 3 || !parse_uint(argv[1], INT32_MAX, &target) ||
	    (argc == 3 && !parse_uint(argv[2], UINT32_MAX - 1, &uid))) {
		fprintf(stderr, "usage: it_vmm_probe TARGET_PID [UID]\n");
		return 2;
	}
	static struct instance in;
	static struct launcher_setup ls;
	in.system_mode = argc == 3;
	in.vmm_uid = argc == 3 ? (uid_t)uid : getuid();
	in.vmm_gid = argc == 3 ? (gid_t)uid : getgid();
	ls.inst = &in;
	for (int i = 0; i < PROG__COUNT; i++)
		ls.exe_fd[i] = -1;
	char self[4096], inside[4200];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len < 0)
		return 1;
	self[len] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(inside, sizeof(inside), "%s/it_vmm_probe_inside", self);
	ls.exe_fd[PROG_QEMU] = open(inside, O_PATH | O_CLOEXEC);
	ls.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	ls.data_fd = ls.listen_fd = ls.vms_fd = ls.cmd_go = -1;
	int spawner = spawner_start(&ls);
	if (spawner < 0 || ls.exe_fd[PROG_QEMU] < 0)
		return 1;
	/* QEMU's fds: what they are does not matter to the probe; the console is its stdout */
	int fds[VFD__COUNT];
	for (int i = 0; i < VFD__COUNT; i++)
		fds[i] = memfd_create("probe", MFD_CLOEXEC);
	static struct spawn_order o;
	o.prog = PROG_QEMU;
	o.nargs = 1;
	o.out_fd = VFD_CONSOLE;
	int n = snprintf(o.args, sizeof(o.args), "%llu", (unsigned long long)target);
	if (n < 0)
		return 1;
	char msg[256];
	pid_t pid = spawner_ask(spawner, &o, fds, VFD__COUNT, msg, sizeof(msg));
	if (pid < 0) {
		fprintf(stderr, "it_vmm_probe: %s\n", msg);
		return 1;
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	char out[4096];
	ssize_t got = pread(fds[7], out, sizeof(out) - 1, 0);
	out[got > 0 ? got : 0] = '\0';
	fputs(out, stdout);
	printf("ptrace_status %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS ? "killed" : "survived");
	return 0;
}
