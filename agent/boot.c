/* PID 1's own work: early mounts, kernel modules, disks by serial, switch root into the
 * read-only rootfs, the state disk, the mounts podman needs; and the final shutdown.
 * Nothing here is fatal: a failure is printed on the console and the agent serves anyway
 * (the host can still ask for health, and reads the console). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/net.h"
#include "common/util.h"

#define NEWROOT	 "/newroot"
#define HOSTNAME "fcvm"

static char net_spec[128]; /* fcvm.net=, "" if not given */

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *opts)
{
	mkdir(dst, 0755); /* fails on a read-only root when it exists already: fine */
	if (mount(src, dst, type, flags, opts) < 0)
		aerr("mount %s on %s (%s): %s", src, dst, type ? type : "-", strerror(errno));
}

/* The kernel gives init /dev/console as fds 0..2 only if the initramfs has the node. */
static void console_stdio(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int c = open("/dev/console", O_RDWR | O_NOCTTY);
		if (c < 0)
			c = open("/dev/null", O_RDWR);
		if (c >= 0 && c != fd) {
			dup2(c, fd);
			close(c);
		}
	}
}

static void parse_cmdline(void)
{
	char buf[4096];
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	for (char *save = NULL, *w = strtok_r(buf, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
		if (strncmp(w, "fcvm.port=", 10) == 0 && strlen(w + 10) < sizeof(ag.ch.port))
			snprintf(ag.ch.port, sizeof(ag.ch.port), "%s", w + 10);
		else if (strncmp(w, "fcvm.net=", 9) == 0)
			snprintf(net_spec, sizeof(net_spec), "%s", w + 9); /* too long: cut, then refused */
		else if (strcmp(w, "fcvm.debug=1") == 0)
			ag.debug = true;
	}
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void load_modules(void)
{
	struct dirent **ents;
	int n = scandir("/modules", &ents, NULL, name_cmp);

	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		size_t len = strlen(name);
		if (len > 3 && strcmp(name + len - 3, ".ko") == 0) {
			char path[512];
			snprintf(path, sizeof(path), "/modules/%s", name);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST))
				aerr("module %s: %s", name, strerror(errno));
			else
				alog("module %s", name);
			if (fd >= 0)
				close(fd);
			unlink(path); /* the initramfs is RAM: give it back */
		}
		free(ents[i]);
	}
	if (n >= 0)
		free(ents);
}

bool sysfs_find_dev(const char *dir, const char *prefix, const char *attr, const char *want, char *dev, size_t devlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool found = false;

	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		char path[300], buf[128];
		if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0 || strlen(e->d_name) > 32)
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", dir, e->d_name, attr);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		buf[strcspn(buf, "\n")] = 0;
		if (strcmp(buf, want) == 0) {
			snprintf(dev, devlen, "/dev/%s", e->d_name);
			found = true;
		}
	}
	closedir(d);
	return found;
}

/* /dev/vdX whose /sys/block/vdX/serial is `serial`. */
static bool find_disk(const char *serial, char *dev, size_t devlen)
{
	return sysfs_find_dev("/sys/block", "vd", "serial", serial, dev, devlen);
}

/* ext4 (and ext2/3) superblock magic 0xEF53, little-endian, at byte 1080. */
static bool has_ext4(const char *dev)
{
	unsigned char m[2] = {0};
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && pread(fd, m, 2, 1080) == 2 && m[0] == 0x53 && m[1] == 0xEF;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Run a program of the (new) root and wait for it; SIGCHLD is not blocked yet. */
static int run_wait(char *const argv[])
{
	char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
	int st;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		environ = (char **)envp; /* execvp searches the PATH of environ */
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool switch_root(void)
{
	static const char *const moved[] = {"/dev", "/proc", "/sys"};
	char dst[64];

	for (size_t i = 0; i < ARRAY_LEN(moved); i++) {
		snprintf(dst, sizeof(dst), NEWROOT "%s", moved[i]);
		if (mount(moved[i], dst, NULL, MS_MOVE, NULL) < 0) {
			aerr("move %s: %s", moved[i], strerror(errno));
			return false;
		}
	}
	/* the initramfs cannot be unmounted; move the new root over it (what switch_root does) */
	if (chdir(NEWROOT) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0) {
		aerr("switch root: %s", strerror(errno));
		return false;
	}
	return true;
}

static void state_disk(void)
{
	char dev[64];

	if (!find_disk("state", dev, sizeof(dev))) {
		aerr("no state disk: containers live in memory");
		do_mount("tmpfs", STATE_MNT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700");
		return;
	}
	if (!has_ext4(dev)) {
		char *const argv[] = {"mkfs.ext4", "-q", "-F", dev, NULL};
		alog("formatting %s", dev);
		int rc = run_wait(argv);
		if (rc != 0)
			aerr("mkfs.ext4 %s: exit %d", dev, rc);
	}
	do_mount(dev, STATE_MNT, "ext4", MS_NOATIME, NULL);
}

static void late_mounts(void)
{
	do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666,mode=0620,gid=5");
	unlink("/dev/ptmx");
	if (symlink("pts/ptmx", "/dev/ptmx") < 0)
		aerr("/dev/ptmx: %s", strerror(errno));
	do_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	do_mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	do_mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	/* hand the controllers down (no systemd does it); best effort */
	int fd = open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		static const char *const ctl[] = {"+cpu", "+memory", "+pids", "+io", "+cpuset"};
		for (size_t i = 0; i < ARRAY_LEN(ctl); i++)
			if (write(fd, ctl[i], strlen(ctl[i])) < 0)
				alog("cgroup %s: %s", ctl[i], strerror(errno));
		close(fd);
	}
}

void boot_init(void)
{
	char dev[64];

	do_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	console_stdio();
	do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	parse_cmdline();
	load_modules();

	/* virtio_blk probes as its module loads; allow a little time for the disks anyway */
	bool root = false;
	for (int i = 0; i < 200 && !(root = find_disk("rootfs", dev, sizeof(dev))); i++)
		usleep(10000);
	if (find_disk("image", ag.image, sizeof(ag.image)))
		alog("image disk %s", ag.image);
	if (!root) {
		aerr("no rootfs disk: staying in the initramfs");
	} else {
		mkdir(NEWROOT, 0755);
		if (mount(dev, NEWROOT, "ext4", MS_RDONLY | MS_NOATIME, NULL) < 0) {
			aerr("mount rootfs %s: %s", dev, strerror(errno));
			root = false;
		}
	}
	if (root) {
		do_mount("tmpfs", NEWROOT "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
		do_mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
		do_mount("tmpfs", NEWROOT "/var/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
		do_mount("tmpfs", NEWROOT "/etc/containers/networks", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
		if (switch_root())
			state_disk();
	}
	late_mounts();
	if (sethostname(HOSTNAME, strlen(HOSTNAME)) < 0)
		aerr("hostname: %s", strerror(errno));
	net_boot(net_spec[0] ? net_spec : NULL, HOSTNAME);
}

/* Reap whatever has ended; true once no child is left. */
static bool reap_all(void)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		;
	return pid < 0 && errno == ECHILD;
}

/* Unmount the state disk and what podman mounted below it (overlays, shm), deepest first:
 * the later a mount is listed, the later it was made. */
static void umount_state(void)
{
	static char buf[64 * 1024];
	char *mnt[256];
	size_t n = 0, len = 0;
	ssize_t k;
	int fd = open("/proc/self/mounts", O_RDONLY | O_CLOEXEC);

	while (fd >= 0 && len < sizeof(buf) - 1 && (k = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)k;
	if (fd >= 0)
		close(fd);
	buf[len] = 0;
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line && n < ARRAY_LEN(mnt);
	     line = strtok_r(NULL, "\n", &save)) {
		char *dir = strchr(line, ' ');
		if (!dir)
			continue;
		dir++;
		dir[strcspn(dir, " ")] = 0;
		if (strncmp(dir, STATE_MNT, strlen(STATE_MNT)) == 0 &&
		    (dir[strlen(STATE_MNT)] == 0 || dir[strlen(STATE_MNT)] == '/'))
			mnt[n++] = dir;
	}
	while (n-- > 0)
		if (umount2(mnt[n], 0) < 0 && umount2(mnt[n], MNT_DETACH) < 0)
			aerr("umount %s: %s", mnt[n], strerror(errno));
}

void boot_shutdown(void)
{
	alog("shutting down");
	kill(-1, SIGTERM); /* every process but us */
	for (int i = 0; i < 100 && !reap_all(); i++)
		usleep(50000);
	kill(-1, SIGKILL);
	for (int i = 0; i < 20 && !reap_all(); i++)
		usleep(50000);
	sync();
	umount_state();
	sync();
	reboot(RB_AUTOBOOT);
	/* PID 1 must not exit (the kernel would panic): wait for the end */
	aerr("reboot: %s", strerror(errno));
	for (;;)
		pause();
}
