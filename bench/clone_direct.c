/* Baseline for the snapshot benchmarks: the plain recipe done directly by this program, with
 * fcvm's QEMU command line (launcher/qemu_argv.c) and assets but no supervisor, launcher,
 * stored, sandbox or clone identity: a VM with its RAM in a shared memfd runs a container;
 * stop, x-ignore-shared, migrate to a file (getfd), the RAM and disk copied sparsely, cont;
 * the RAM loaded into a sealed memfd; clones started with -incoming defer on it (private),
 * migrate-incoming, cont.
 *
 *   clone_direct ASSETS_DIR N   prints
 *     "pause PAUSE_MS STATE_MS"              the snapshot
 *     "clone READY_MS EXEC_MS"  N times      one clone at a time: VMM start to the agent's
 *                                            hello reply; to `podman exec true` done
 *     "all ALL_MS"                           N clones at once: to the last hello reply
 *     "pss K KIB RAM_KIB"                    K idle clones (K = 1, 5, N) running together:
 *                                            their QEMUs' total PSS; the guest RAM each holds
 *                                            privately (its copy-on-write pages), on average */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "bench/direct.h"
#include "common/assets.h"
#include "common/util.h"
#include "launcher/qemu_argv.h"

#define MEM_MIB 512
#define MAX_N	16

struct vm {
	pid_t pid;
	int qmp, agent; /* connected */
	char dir[128];
};

static const struct assets *A;
static char root[64];
static unsigned long tsc;

/* One QMP command, its return value (NULL on error; the caller frees). */
static json_t *qmp(int fd, const char *cmd, json_t *args, int pass_fd)
{
	json_t *j = json_pack("{s:s}", "execute", cmd);
	if (args)
		json_object_set_new(j, "arguments", args);
	char *line = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	size_t n = strlen(line);
	char *full = malloc(n + 3);
	snprintf(full, n + 3, "%s\r\n", line);
	free(line);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = full, .iov_len = n + 2};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (pass_fd >= 0) {
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	ssize_t w = sendmsg(fd, &mh, 0);
	free(full);
	if (w < 0)
		return NULL;
	/* lines until a return or an error (events skipped) */
	static char buf[65536];
	static size_t have;
	for (;;) {
		char *nl = memchr(buf, '\n', have);
		if (!nl) {
			ssize_t r = read(fd, buf + have, sizeof(buf) - have);
			if (r <= 0)
				return NULL;
			have += (size_t)r;
			continue;
		}
		json_t *m = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
		memmove(buf, nl + 1, have - (size_t)(nl + 1 - buf));
		have -= (size_t)(nl + 1 - buf);
		if (!m)
			continue;
		json_t *ret = json_object_get(m, "return");
		if (ret || json_object_get(m, "error")) {
			if (ret)
				json_incref(ret);
			json_decref(m);
			return ret;
		}
		json_decref(m);
	}
}

static int qmp_ok(int fd, const char *cmd, json_t *args, int pass_fd)
{
	json_t *r = qmp(fd, cmd, args, pass_fd);
	json_decref(r);
	return r ? 0 : -1;
}

static json_t *caps(void)
{
	return json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability", "x-ignore-shared", "state", 1);
}

static int wait_migration(int fd)
{
	for (;;) {
		json_t *r = qmp(fd, "query-migrate", NULL, -1);
		const char *st = json_string_value(json_object_get(r, "status"));
		int done = st && !strcmp(st, "completed")			       ? 1
			   : st && (!strcmp(st, "failed") || !strcmp(st, "cancelled")) ? -1
										       : 0;
		json_decref(r);
		if (!r || done < 0)
			return -1;
		if (done)
			return 0;
		usleep(1000);
	}
}

static int agent_call(int fd, struct pmsg *m)
{
	struct perr e;
	stream_send_msg(fd, m, &e);
	pmsg_free(m);
	return 0;
}

/* hello, and its reply */
static int agent_hello(int fd)
{
	struct pmsg m;
	struct perr e;
	pmsg_init(&m, PK_REQUEST, OP_AGENT_HELLO, 1);
	agent_call(fd, &m);
	if (skip_to_marker(fd) < 0 || stream_recv_msg(fd, &m, &e) <= 0)
		return -1;
	pmsg_free(&m);
	return 0;
}

/* a session's process run to its exit */
static int agent_run(int fd, uint32_t sid, const char *kind, const char *cmd)
{
	struct pmsg m;
	struct perr e;
	pmsg_init(&m, PK_REQUEST, OP_PROC_START, sid);
	prec_set_uint(&m, &m.body, "session", sid);
	prec_set_str(&m, &m.body, "kind", kind);
	if (!strcmp(kind, "run"))
		prec_set_str(&m, &m.body, "image", FCVM_DEMO_REF);
	prec_add_str(&m, &m.body, "argv", "sh");
	prec_add_str(&m, &m.body, "argv", "-c");
	prec_add_str(&m, &m.body, "argv", cmd);
	agent_call(fd, &m);
	for (;;) {
		if (stream_recv_msg(fd, &m, &e) <= 0)
			return -1;
		uint64_t s = 0;
		bool done =
		    m.kind == PK_EVENT && m.op->id == OP_PROC_EXIT && prec_uint(&m.body, "session", &s) && s == sid;
		bool started = m.kind == PK_REPLY && m.id == sid && m.err_code == PE_OK;
		int err = m.kind == PK_REPLY && m.id == sid && m.err_code != PE_OK;
		pmsg_free(&m);
		if (err)
			return -1;
		if (done || (started && !strcmp(kind, "run")))
			return 0;
	}
}

/* until the container runs (podman exec needs it), polled, bounded */
static int agent_wait_running(int fd)
{
	for (int i = 0; i < 1200; i++) {
		struct pmsg m;
		struct perr e;
		pmsg_init(&m, PK_REQUEST, OP_AGENT_HEALTH, 99);
		agent_call(fd, &m);
		do {
			if (stream_recv_msg(fd, &m, &e) <= 0)
				return -1;
			if (m.kind == PK_REPLY && m.id == 99)
				break;
			pmsg_free(&m);
		} while (1);
		const char *c = prec_str(&m.body, "container");
		bool up = c && !strcmp(c, "running");
		pmsg_free(&m);
		if (up)
			return 0;
		usleep(100000);
	}
	return -1;
}

static int file_in(const char *dir, const char *name, int flags)
{
	char p[192];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return open(p, flags | O_CLOEXEC, 0600);
}

/* IN into OUT, holes kept */
static int sparse_copy(int in, int out)
{
	struct stat st;
	if (fstat(in, &st) < 0 || ftruncate(out, st.st_size) < 0)
		return -1;
	for (off_t off = 0; off < st.st_size;) {
		off_t data = lseek(in, off, SEEK_DATA);
		if (data < 0)
			break;
		off_t hole = lseek(in, data, SEEK_HOLE);
		for (loff_t i = data, o = data; i < hole;) {
			ssize_t n = copy_file_range(in, &i, out, &o, (size_t)(hole - i), 0);
			if (n <= 0) { /* across filesystems: by hand */
				static char b[1 << 16];
				n = pread(in, b, sizeof(b) < (size_t)(hole - i) ? sizeof(b) : (size_t)(hole - i), i);
				if (n <= 0 || pwrite(out, b, (size_t)n, o) != n)
					return -1;
				i += n;
				o += n;
			}
		}
		off = hole;
	}
	return 0;
}

/* A VM: fresh sockets in DIR; RAM, disk and (a clone) state and template from the caller. */
static int start(struct vm *v, const char *name, int ram, int disk, int state, int base)
{
	snprintf(v->dir, sizeof(v->dir), "%s/%s", root, name);
	mkdir(v->dir, 0700);
	char qp[192], ap[192];
	snprintf(qp, sizeof(qp), "%s/qmp.sock", v->dir);
	snprintf(ap, sizeof(ap), "%s/agent.sock", v->dir);
	unlink(qp);
	unlink(ap);
	int fds[VFD__COUNT + 2];
	fds[VFD_QMP] = listener(qp);
	fds[VFD_AGENT] = listener(ap);
	fds[VFD_KERNEL] = open(A->kernel, O_RDONLY | O_CLOEXEC);
	fds[VFD_INITRD] = open(A->initramfs, O_RDONLY | O_CLOEXEC);
	fds[VFD_ROOTFS] = open(A->rootfs, O_RDONLY | O_CLOEXEC);
	fds[VFD_DISK] = disk;
	fds[VFD_IMAGE] = open(A->demo_image, O_RDONLY | O_CLOEXEC);
	fds[VFD_CONSOLE] = file_in(v->dir, "console.log", O_WRONLY | O_CREAT | O_TRUNC);
	fds[VFD_MEM] = ram;
	fds[VFD__COUNT] = state;
	fds[VFD__COUNT + 1] = base;
	struct vm_config c = {.cpus = 1, .mem_mib = MEM_MIB, .accel = ACCEL_TCG, .tsc_khz = tsc, .restore = state >= 0};
	const char *argv[QEMU_ARGV_MAX + 2];
	char buf[8192];
	argv[0] = "qemu-system-x86_64";
	int n = qemu_build_argv(&c, argv + 1, QEMU_ARGV_MAX, buf, sizeof(buf));
	if (n < 0)
		return -1;
	argv[n + 1] = NULL;
	if (getenv("CLONE_DEBUG"))
		for (int i = 0; i < VFD__COUNT + 2; i++)
			fprintf(stderr, "fd[%d] = %d\n", i, fds[i]);
	v->pid = spawn_qemu((char **)argv, fds, state >= 0 ? VFD__COUNT + 2 : VFD__COUNT, fds[VFD_CONSOLE]);
	for (int i = 0; i < VFD__COUNT; i++)
		if (i != VFD_MEM && i != VFD_DISK)
			close(fds[i]);
	v->qmp = connect_to(qp);
	v->agent = connect_to(ap);
	if (v->pid < 0 || v->qmp < 0 || v->agent < 0)
		return -1;
	char greet[4096];
	if (read(v->qmp, greet, sizeof(greet)) <= 0 || qmp_ok(v->qmp, "qmp_capabilities", NULL, -1) < 0)
		return -1;
	return 0;
}

static int restore(struct vm *v)
{
	char uri[32];
	snprintf(uri, sizeof(uri), "fd:%d", VMM_FD_STATE);
	if (qmp_ok(v->qmp, "migrate-set-capabilities", caps(), -1) < 0 ||
	    qmp_ok(v->qmp, "migrate-incoming", json_pack("{s:s}", "uri", uri), -1) < 0 || wait_migration(v->qmp) < 0)
		return -1;
	return qmp_ok(v->qmp, "cont", NULL, -1);
}

static void stop(struct vm *v)
{
	kill(v->pid, SIGKILL);
	waitpid(v->pid, NULL, 0);
	close(v->qmp);
	close(v->agent);
}

static long pss_kib(pid_t pid)
{
	char p[64], line[256];
	snprintf(p, sizeof(p), "/proc/%d/smaps_rollup", (int)pid);
	FILE *f = fopen(p, "r");
	long kib = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Pss:", 4)) {
			kib = strtol(line + 4, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return kib;
}

/* A clone's own guest RAM: the pages of its private mapping of the template that it wrote
 * (anonymous copies); the rest are the template's, shared by every clone. */
static long ram_private_kib(pid_t pid)
{
	char p[64], line[512];
	snprintf(p, sizeof(p), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(p, "r");
	long kib = 0;
	bool in = false;
	while (f && fgets(line, sizeof(line), f)) {
		char *dash = strchr(line, '-'), *sp = strchr(line, ' ');
		if (isxdigit((unsigned char)line[0]) && dash && sp && dash < sp) /* a mapping's header */
			in = strstr(line, "memfd:") != NULL;
		else if (in && !strncmp(line, "Anonymous:", 10)) /* pages copied on write */
			kib += strtol(line + 10, NULL, 10);
	}
	if (f)
		fclose(f);
	return kib;
}

/* A clone's own disk: a sparse copy of the snapshot's (what stored does where it cannot
 * reflink, less the overlay). */
static int clone_disk(const char *snap, const char *name)
{
	char img[48];
	snprintf(img, sizeof(img), "%s.img", name);
	int in = file_in(snap, "disk.img", O_RDONLY), out = file_in(root, img, O_RDWR | O_CREAT | O_TRUNC);
	int rc = in < 0 || out < 0 ? -1 : sparse_copy(in, out);
	if (in >= 0)
		close(in);
	return rc < 0 ? -1 : out;
}

int main(int argc, char **argv)
{
	static struct assets a;
	char err[512];
	uint64_t n;
	if (argc != 3 || assets_load(argv[1], &a, err, sizeof(err)) < 0 || !parse_uint(argv[2], MAX_N, &n) || n < 1) {
		fprintf(stderr, "usage: clone_direct ASSETS_DIR N (N <= %d)\n", MAX_N);
		return 2;
	}
	A = &a;
	signal(SIGPIPE, SIG_IGN);
	tsc = host_tsc_khz();
	snprintf(root, sizeof(root), "/tmp/fcvm-clone-direct.XXXXXX");
	if (!mkdtemp(root))
		return 1;
	char snap[96];
	snprintf(snap, sizeof(snap), "%s/snap", root);
	mkdir(snap, 0700);
	int rc = 1;

	/* the source: RAM a shared memfd, a container running */
	struct vm src = {0};
	int ram = memfd_create("ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int disk = file_in(root, "src.img", O_RDWR | O_CREAT | O_TRUNC);
	if (ram < 0 || ftruncate(ram, (off_t)MEM_MIB << 20) < 0 || disk < 0 || ftruncate(disk, 4ll << 30) < 0 ||
	    start(&src, "src", ram, disk, -1, -1) < 0 || agent_hello(src.agent) < 0 ||
	    agent_run(src.agent, 1, "run", "exec sleep 100000") < 0 || agent_wait_running(src.agent) < 0 ||
	    agent_run(src.agent, 2, "exec", "true") < 0) {
		fprintf(stderr, "clone_direct: the source VM did not come up\n");
		goto out;
	}
	/* the snapshot */
	int state = file_in(snap, "state", O_WRONLY | O_CREAT | O_TRUNC);
	if (qmp_ok(src.qmp, "migrate-set-capabilities", caps(), -1) < 0 ||
	    qmp_ok(src.qmp, "getfd", json_pack("{s:s}", "fdname", "st"), state) < 0)
		goto out;
	close(state);
	uint64_t t0 = now_mono_ns();
	if (qmp_ok(src.qmp, "stop", NULL, -1) < 0 ||
	    qmp_ok(src.qmp, "migrate", json_pack("{s:s}", "uri", "fd:st"), -1) < 0 || wait_migration(src.qmp) < 0)
		goto out;
	uint64_t t_state = now_mono_ns();
	int mem = file_in(snap, "mem", O_RDWR | O_CREAT | O_TRUNC),
	    sdisk = file_in(snap, "disk.img", O_RDWR | O_CREAT | O_TRUNC);
	if (mem < 0 || sdisk < 0 || sparse_copy(ram, mem) < 0 || sparse_copy(disk, sdisk) < 0 || fsync(mem) < 0 ||
	    fsync(sdisk) < 0 || qmp_ok(src.qmp, "cont", NULL, -1) < 0)
		goto out;
	uint64_t t1 = now_mono_ns();
	printf("pause %.0f %.0f\n", (double)(t1 - t0) / 1e6, (double)(t_state - t0) / 1e6);
	stop(&src);
	close(ram);
	close(disk);
	close(sdisk);
	/* the template */
	int tmpl = memfd_create("template", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (tmpl < 0 || sparse_copy(mem, tmpl) < 0 ||
	    fcntl(tmpl, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto out;
	close(mem);

	struct vm c[MAX_N] = {0};
	char name[32];
	/* one at a time */
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "c%u", i);
		int d = clone_disk(snap, name), st = file_in(snap, "state", O_RDONLY),
		    base = file_in(snap, "disk.img", O_RDONLY);
		uint64_t s0 = now_mono_ns();
		if (d < 0 || start(&c[i], name, tmpl, d, st, base) < 0 || restore(&c[i]) < 0 ||
		    agent_hello(c[i].agent) < 0)
			goto out;
		uint64_t s1 = now_mono_ns();
		if (agent_run(c[i].agent, 1000, "exec", "true") < 0)
			goto out;
		uint64_t s2 = now_mono_ns();
		printf("clone %.0f %.0f\n", (double)(s1 - s0) / 1e6, (double)(s2 - s0) / 1e6);
		fflush(stdout);
		stop(&c[i]);
		close(d);
		close(st);
		close(base);
	}
	/* all at once, then their memory */
	uint64_t a0 = now_mono_ns();
	int opened[MAX_N][3];
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "all%u", i);
		opened[i][0] = clone_disk(snap, name);
		opened[i][1] = file_in(snap, "state", O_RDONLY);
		opened[i][2] = file_in(snap, "disk.img", O_RDONLY);
		if (opened[i][0] < 0 || start(&c[i], name, tmpl, opened[i][0], opened[i][1], opened[i][2]) < 0 ||
		    restore(&c[i]) < 0)
			goto out;
	}
	for (unsigned i = 0; i < n; i++)
		if (agent_hello(c[i].agent) < 0)
			goto out;
	printf("all %.0f\n", (double)(now_mono_ns() - a0) / 1e6);
	for (unsigned i = 0; i < n; i++) {
		stop(&c[i]);
		for (int k = 0; k < 3; k++)
			close(opened[i][k]);
	}
	/* memory: 1, 5, N idle clones running together */
	unsigned up = 0, ks[] = {1, 5, (unsigned)n};
	for (unsigned k = 0; k < 3; k++) {
		if (ks[k] > n || (k && ks[k] <= ks[k - 1]))
			continue;
		for (; up < ks[k]; up++) {
			snprintf(name, sizeof(name), "pss%u", up);
			opened[up][0] = clone_disk(snap, name);
			opened[up][1] = file_in(snap, "state", O_RDONLY);
			opened[up][2] = file_in(snap, "disk.img", O_RDONLY);
			if (opened[up][0] < 0 ||
			    start(&c[up], name, tmpl, opened[up][0], opened[up][1], opened[up][2]) < 0 ||
			    restore(&c[up]) < 0 || agent_hello(c[up].agent) < 0) {
				fprintf(stderr, "clone_direct: clone %u of %u did not come up\n", up + 1, ks[k]);
				goto out;
			}
		}
		sleep(2); /* a bench: what idle clones hold once settled */
		long total = 0, ram_private = 0;
		for (unsigned i = 0; i < up; i++) {
			total += pss_kib(c[i].pid);
			ram_private += ram_private_kib(c[i].pid);
		}
		printf("pss %u %ld %ld\n", up, total, ram_private / (long)up);
		fflush(stdout);
	}
	for (unsigned i = 0; i < up; i++)
		stop(&c[i]);
	rc = 0;
out:
	fflush(stdout);
	char cmd[192];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0 && rc == 0)
		rc = 1;
	return rc;
}
