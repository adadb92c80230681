/* The launcher's second job: start a VMM for the supervisor. The supervisor builds the
 * command line and opens every file the VMM will use; the launcher checks the fds' kinds
 * (proto_attach_fds did), then in the child: fds onto 3.., the VMM user (system mode), a
 * user namespace of its own with private network, IPC and UTS namespaces, no capabilities,
 * no_new_privs, the vmm_qemu seccomp policy, and exec of the QEMU binary opened at start
 * (never a path from the request). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "policy/sandbox.h"
#include "supervisor/launcher.h"
#include "supervisor/qemu_argv.h"

#define VMM_FIRST_FD 3

int vmm_open_binary(void)
{
	const char *env = getenv("FCVM_QEMU");
	if (env && env[0] == '/')
		return open(env, O_PATH | O_CLOEXEC);
	static const char *const dirs[] = {"/usr/bin", "/usr/local/bin", "/usr/libexec"};
	char path[64];
	for (size_t i = 0; i < ARRAY_LEN(dirs); i++) {
		snprintf(path, sizeof(path), "%s/qemu-system-x86_64", dirs[i]);
		int fd = open(path, O_PATH | O_CLOEXEC);
		if (fd >= 0)
			return fd;
	}
	return -ENOENT;
}

/* The VMM's namespaces. Its uid maps to itself (it is not root in there either); the user
 * namespace only serves to own the mount, network, IPC and UTS namespaces it gets. */
static int enter_vmm_namespaces(void)
{
	return launcher_enter_userns(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS, getuid(), getgid());
}

/* The VMM's view of the filesystem: a fresh tmpfs root holding /usr (the binary, its
 * libraries, firmware and modules), /proc (its inherited fds are named /proc/self/fd/N), a
 * /dev with null, zero, random, urandom and kvm, and nothing else: no /home, /etc, /var,
 * /tmp, no state or data directory. In its own user namespace it may mount; the mount
 * namespace was made with it, so none of this is seen outside. */
#define JAIL_ROOT "/tmp" /* any existing directory: the tmpfs on it becomes / */

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
	/* MS_NOSUID: ignored by a bind, but the launcher's filter admits only mounts that carry it */
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
	if (mount("fcvm-vmm", JAIL_ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
		return -errno;
	if ((rc = bind_into("/usr", "/usr", false)) < 0 || (rc = bind_into("/proc", "/proc", false)) < 0)
		return rc;
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

/* fds[i] -> VMM_FIRST_FD + i, the program right after them (close-on-exec), everything else
 * closed; stdout/stderr -> the console file. Returns the program's fd or -errno. */
static int place_fds(const int *fds, unsigned n, int console_index, int devnull, int exe)
{
	int high[PROTO_MAX_FDS];
	if (n > PROTO_MAX_FDS || console_index < 0 || (unsigned)console_index >= n)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		high[i] = fcntl(fds[i], F_DUPFD, 64);
		if (high[i] < 0)
			return -errno;
	}
	if (dup2(devnull, 0) < 0 || dup2(high[console_index], 1) < 0 || dup2(high[console_index], 2) < 0)
		return -errno;
	int exe_high = fcntl(exe, F_DUPFD_CLOEXEC, 64);
	if (exe_high < 0)
		return -errno;
	for (unsigned i = 0; i < n; i++)
		if (dup2(high[i], VMM_FIRST_FD + (int)i) < 0)
			return -errno;
	int prog = VMM_FIRST_FD + (int)n;
	if (dup3(exe_high, prog, O_CLOEXEC) < 0 || syscall(SYS_close_range, prog + 1, ~0U, 0) < 0)
		return -errno;
	return prog;
}

static __attribute__((noreturn)) void exec_vmm(const struct launcher_setup *ls, const struct pmsg *req)
{
	const struct instance *in = ls->inst;
	const struct pval *av = prec_get(&req->body, "argv");
	char *argv[VMM_ARGV_LIMIT + 2];
	char err[256];
	sigset_t all;
	int rc;

	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	setsid(); /* the user's Ctrl-C goes to the client, which asks for an orderly stop */
	int prog = place_fds(req->fds, req->nfds, VFD_CONSOLE, ls->devnull, ls->vmm_exe_fd);
	if (prog < 0) {
		log_err("vmm: fds: %s", strerror(-prog));
		_exit(126);
	}
	argv[0] = "qemu-system-x86_64";
	unsigned n = av ? av->list.n : 0;
	for (unsigned i = 0; i < n && i < VMM_ARGV_LIMIT; i++)
		argv[i + 1] = (char *)av->list.v[i];
	argv[n + 1] = NULL;
	/* system mode: become the VMM user (this drops every capability); rootless: already
	 * the user, with none to drop */
	if ((rc = sandbox_drop_caps(&policy_vmm_qemu, in->system_mode, in->vmm_uid, in->vmm_gid)) < 0) {
		log_err("vmm: dropping privileges: %s", strerror(-rc));
		_exit(126);
	}
	if ((rc = enter_vmm_namespaces()) < 0) {
		log_err("vmm: namespaces: %s", strerror(-rc));
		_exit(126);
	}
	if ((rc = jail_filesystem()) < 0) {
		log_err("vmm: its filesystem view: %s", strerror(-rc));
		_exit(126);
	}
	if ((rc = sandbox_set_rlimits(&policy_vmm_qemu)) < 0 || (rc = sandbox_no_new_privs()) < 0 ||
	    (rc = sandbox_seccomp(&policy_vmm_qemu)) < 0) {
		snprintf(err, sizeof(err), "%s", strerror(-rc));
		log_err("vmm: sandbox: %s", err);
		_exit(126);
	}
	char *const envp[] = {NULL};
	syscall(SYS_execveat, prog, "", argv, envp, AT_EMPTY_PATH);
	fprintf(stderr, "fcvm: cannot execute QEMU: %s\n", strerror(errno)); /* the console file */
	_exit(127);
}

pid_t vmm_spawn(const struct launcher_setup *ls, const struct pmsg *req, struct pmsg *rep)
{
	const char *vm = prec_str(&req->body, "vm");
	if (ls->vmm_exe_fd < 0) {
		pmsg_set_error(rep, PE_NOT_FOUND,
			       "QEMU is not installed (qemu-system-x86_64 not found): apt-get install qemu-system-x86");
		return -1;
	}
	const struct pval *av = prec_get(&req->body, "argv");
	if (!av || av->list.n > VMM_ARGV_LIMIT) {
		pmsg_set_error(rep, PE_INVALID, "too many VMM arguments");
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		pmsg_set_error(rep, PE_INTERNAL, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		exec_vmm(ls, req);
	log_info("started the VMM of %s as pid %d", vm, (int)pid);
	prec_set_uint(rep, &rep->body, "pid", (uint64_t)pid);
	return pid;
}
