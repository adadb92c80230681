/* it_vmm_probe_inside TARGET_PID: what it_vmm_probe runs inside a VMM's sandbox. Linked
 * with libc alone, as QEMU's start-up is, so that QEMU's filter admits its start-up: it
 * then tries to see, signal and trace another VM's QEMU (see vmm_probe.c). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	pid_t target = (pid_t)strtol(argv[1], NULL, 10);
	int procs = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d)))
		procs += e->d_name[0] >= '1' && e->d_name[0] <= '9';
	if (d)
		closedir(d);
	printf("proc_entries %d\n", procs);
	printf("kill_target %d\n", kill(target, 0) < 0 ? errno : 0);
	printf("kill_all %d\n", kill(-1, SIGKILL) < 0 ? errno : 0);
	fflush(stdout);
	syscall(SYS_ptrace, PTRACE_SEIZE, target, 0, 0); /* not in QEMU's filter: this ends us */
	printf("ptrace_returned %d\n", errno);
	return 0;
}
