/* QEMU's confinement, in the spawner's child, after its fds are placed and (system mode)
 * it became the VM's own uid: a user namespace of its own (its uid mapped to itself: it is
 * not root in there either) owning private mount, network, IPC, UTS and PID namespaces.
 * The process that made them forks once more (CLONE_PARENT: the launcher's child) into the
 * PID namespace, reports that pid to the spawner and exits; QEMU is PID 1 of a namespace
 * holding nothing else, so it can neither see nor signal nor trace another VMM. Its root is
 * a fresh tmpfs with /usr (the binary, its libraries, firmware), a /proc of its own PID
 * namespace, and null, zero, random, urandom and kvm in /dev: no /home, /etc, /var, /tmp,
 * no state or data directory. Then rlimits, no_new_privs, the vmm_qemu filter and exec. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "launcher/launcher.h"
#include "policy/sandbox.h"

#define JAIL_ROOT "/tmp" /* any existing directory: the tmpfs on it becomes / */
#define JAIL_NS	  (CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID)

static int bind_into(const char *src, const char *dst, bool file)
{
	char path[128];
	snprintf(path, sizeof(path), JAIL_ROOT "%s", dst);
	if (file) {
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		close(fd);
	} else if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		return -errno;
	}
	if (mount(src, path, NULL, MS_BIND | MS_REC | MS_NOSUID, NULL) < 0)
		return -errno;
	return 0;
}

static int jail_filesystem(void)
{
	static const char *const links[][2] = {
	    {"usr/bin", JAIL_ROOT "/bin"}, {"usr/lib", JAIL_ROOT "/lib"}, {"usr/lib64", JAIL_ROOT "/lib64"}};
	static const char *const devs[] = {"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"};
	int rc;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("fcvm-vmm", JAIL_ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
		return -errno;
	if ((rc = bind_into("/usr", "/usr", false)) < 0)
		return rc;
	/* a procfs of this PID namespace: only QEMU's own processes are in it */
	if (mkdir(JAIL_ROOT "/proc", 0555) < 0 ||
	    mount("proc", JAIL_ROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -errno;
	if (mkdir(JAIL_ROOT "/dev", 0755) < 0)
		return -errno;
	for (size_t i = 0; i < ARRAY_LEN(devs); i++)
		if ((rc = bind_into(devs[i], devs[i], true)) < 0)
			return rc;
	if (access("/dev/kvm", F_OK) == 0 && (rc = bind_into("/dev/kvm", "/dev/kvm", true)) < 0)
		return rc;
	for (size_t i = 0; i < ARRAY_LEN(links); i++)
		if (symlink(links[i][0], links[i][1]) < 0)
			return -errno;
	/* pivot_root(".", "."): the old root ends up on top of the new one, then goes */
	if (chdir(JAIL_ROOT) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
	    chdir("/") < 0)
		return -errno;
	return 0;
}

static __attribute__((noreturn)) void fail(const char *what, int neg)
{
	log_err("vmm: %s: %s", what, strerror(-neg));
	fprintf(stderr, "fcvm: cannot start QEMU: %s: %s\n", what, strerror(-neg)); /* the console file */
	_exit(126);
}

__attribute__((noreturn)) void vmm_jail_exec(int exe_fd, int report_fd, char **argv)
{
	int rc;
	if ((rc = sandbox_userns(JAIL_NS, getuid(), getgid())) < 0)
		fail("namespaces", rc);
	/* into the PID namespace: the next child is its PID 1, and the launcher's */
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		fail("fork into its PID namespace", -errno);
	if (pid > 0) {
		/* the spawner learns QEMU's pid, as the launcher sees it */
		dprintf(report_fd, "%d\n", (int)pid);
		_exit(0);
	}
	close(report_fd);
	if ((rc = jail_filesystem()) < 0)
		fail("its filesystem view", rc);
	if ((rc = sandbox_set_rlimits(&policy_vmm_qemu)) < 0 || (rc = sandbox_no_new_privs()) < 0 ||
	    (rc = sandbox_seccomp(&policy_vmm_qemu)) < 0)
		fail("sandbox", rc);
	char *const envp[] = {NULL};
	syscall(SYS_execveat, exe_fd, "", argv, envp, AT_EMPTY_PATH);
	fail("exec", -errno);
}
