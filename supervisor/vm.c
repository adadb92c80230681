/* Starting a VM: a disk from stored, the VM's directory with its two listening sockets and
 * console file, the assets opened read-only, the QEMU command line, and the launcher asked
 * to start the VMM with those fds. Then QMP and the agent are connected; the container is
 * started once the agent says hello. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/assets.h"
#include "common/log.h"
#include "common/util.h"
#include "supervisor/client.h"
#include "supervisor/startup_cache.h"
#include "supervisor/quota.h"
#include "supervisor/snapshot.h"
#include "supervisor/vm.h"
#include "supervisor/vmm.h"
#include "supervisor/vm_start.h"

#define BOOT_TIMEOUT_MS 120000 /* VMM start to agent hello (TCG on a busy host) */
#define VM_DEFAULT_MEM	512
/* vCPUs by default. Two make podman (Go) faster (TCG here: `run echo` 5.3 s vs 6.8 s), but
 * under TCG on a small, overloaded host a 2-vCPU guest was seen to soft-lock (three VMs at
 * once on 2 cores): two only with KVM or with 4 host CPUs or more. */
#define VM_DEFAULT_CPUS		 2
#define VM_TCG_SMP_MIN_HOST_CPUS 4

const char *vm_status_name(enum vm_status s)
{
	static const char *const names[] = {"booting", "running", "stopping", "stopped", "lost", "creating"};
	return names[s];
}

/* Names are each owner's own: a client finds its own VM of that name; root, anybody's,
 * its own first, else the one other user's (several: named by ID, as `fcvm ls` shows it,
 * which anybody may use for their own). */
struct vm *vm_find_for(struct supervisor *s, uid_t uid, const char *name, char *err, size_t n)
{
	struct vm *found = NULL;
	unsigned others = 0;
	for (struct vm *vm = TAILQ_FIRST(&s->vms); vm; vm = TAILQ_NEXT(vm, link)) {
		if (strcmp(vm->name, name) != 0 || (uid != 0 && vm->owner != uid))
			continue;
		if (vm->owner == uid)
			return vm;
		found = vm;
		others++;
	}
	if (others > 1) {
		snprintf(err, n, "%u users have a VM named '%s': name it by its ID (`fcvm ls`)", others, name);
		return NULL;
	}
	if (found)
		return found;
	size_t len = strlen(name);
	if (len < 12 || strspn(name, "0123456789abcdef") != len)
		return NULL;
	for (struct vm *vm = TAILQ_FIRST(&s->vms); vm; vm = TAILQ_NEXT(vm, link))
		if ((uid == 0 || vm->owner == uid) && strncmp(vm->id, name, len) == 0) {
			if (found) {
				snprintf(err, n, "more than one VM's ID begins with '%s'", name);
				return NULL;
			}
			found = vm;
		}
	return found;
}

struct vm *vm_find_own(struct supervisor *s, uid_t owner, const char *name)
{
	for (struct vm *vm = TAILQ_FIRST(&s->vms); vm; vm = TAILQ_NEXT(vm, link))
		if (vm->owner == owner && strcmp(vm->name, name) == 0)
			return vm;
	return NULL;
}

static void close_net_fds(struct vm_start *st)
{
	for (int i = 0; i < 3; i++)
		close_fdp(&st->net_fds[i]);
}

static void start_free(struct vm_start *st)
{
	client_release(st->c);
	pmsg_free(&st->rep);
	close_fdp(&st->image_fd);
	close_fdp(&st->disk_fd);
	close_fdp(&st->ram_fd);
	close_fdp(&st->state_fd);
	close_fdp(&st->disk_base_fd);
	close_net_fds(st);
	if (st->has_net)
		pmsg_free(&st->net_req);
	free(st);
}

#define HELPER_RETRY_MS	 100 /* stored or netd (re)starting: ask again, for up to ~10 s */
#define HELPER_TRIES_MAX 100

static void on_pasta(struct pmsg *rep, void *arg);
static void start_done(struct vm_start *st);

void start_fail(struct vm_start *st, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_err("%s: not started: %s", st->vm->name, msg);
	pmsg_set_error(&st->rep, code, "%s", msg);
	client_send(st->c, &st->rep);
	struct vm *vm = st->vm;
	start_free(st);
	vm->remove_on_stop = true;
	if (vm->pid > 0) { /* the VMM runs already: stop it, then it goes */
		vm_stop(vm, "start failed");
		return;
	}
	vm->status = VM_STOPPED;
	vm_net_release(vm);
	vm_remove(vm);
}

/* The address of NAME in the VM's directory: /proc/self/fd/DIR/NAME keeps it short. */
static struct sockaddr_un vm_sock_addr(const struct vm *vm, const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", vm->dirfd, name);
	return sa;
}

int vm_connect(const struct vm *vm, const char *name)
{
	struct sockaddr_un sa = vm_sock_addr(vm, name);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* QEMU accepts once its chardev is up; the listen backlog holds us until then */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* A listening UNIX socket in the VM's directory, handed to QEMU (server=on with fd=). */
static int make_listener(struct vm *vm, const char *name)
{
	struct sockaddr_un sa = vm_sock_addr(vm, name);
	unlinkat(vm->dirfd, name, 0);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void on_boot_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct vm *vm = arg;
	(void)fd;
	(void)what;
	if (vm->status == VM_BOOTING) {
		log_err("%s: the agent did not answer within %d s; stopping", vm->name, BOOT_TIMEOUT_MS / 1000);
		vm_stop(vm, "boot timeout");
	}
}

struct event *vm_timer_new(struct vm *vm)
{
	return evtimer_new(vm->sup->base, on_boot_timeout, vm);
}

void vm_boot_deadline(struct vm *vm)
{
	struct timeval tv = {BOOT_TIMEOUT_MS / 1000, 0};
	event_del(vm->timer);
	event_assign(vm->timer, vm->sup->base, -1, 0, on_boot_timeout, vm);
	evtimer_add(vm->timer, &tv);
}

static void on_vmm_spawned(struct pmsg *rep, void *arg)
{
	struct vm_start *st = arg;
	struct vm *vm = st->vm;
	uint64_t pid;
	if (rep->err_code != PE_OK || !prec_uint(&rep->body, "pid", &pid)) {
		start_fail(st, rep->err_code ? rep->err_code : PE_INTERNAL, "the VMM did not start: %s",
			   rep->err_msg ? rep->err_msg : "no pid");
		return;
	}
	uint64_t uid = 0;
	prec_uint(&rep->body, "uid", &uid);
	snprintf(vm->limits, sizeof(vm->limits), "%s",
		 prec_str(&rep->body, "limits") ? prec_str(&rep->body, "limits") : "");
	vm->pid = (pid_t)pid;
	vm->vmm_uid = (uid_t)uid;
	vm->status = VM_BOOTING;
	vm->spawned_mono_ms = now_mono_ms();
	int rc;
	if ((rc = vmm_of(vm)->attach(vm)) < 0 || (rc = agent_link_open(vm)) < 0)
		log_err("%s: cannot connect to the VMM's sockets: %s", vm->name, strerror(-rc));
	vm_boot_deadline(vm);
	vm_record_save(vm);
	if (vm->qc.restore)
		clone_restore(vm); /* paused until its device state is loaded */
	if (st->has_net && strcmp(vm->network, "rootless") == 0) {
		int userns = st->net_fds[2], netns = st->net_fds[1];
		st->net_fds[1] = st->net_fds[2] = -1; /* the request owns them now */
		vm_net_pasta(vm, &st->net_req, userns, netns, on_pasta, st);
		return;
	}
	start_done(st);
}

static void on_pasta(struct pmsg *rep, void *arg)
{
	struct vm_start *st = arg;
	if (rep->err_code != PE_OK) {
		start_fail(st, rep->err_code, "pasta did not start: %s", rep->err_msg ? rep->err_msg : "?");
		return;
	}
	start_done(st);
}

/* The VMM (and pasta) run: answer the client. */
static void start_done(struct vm_start *st)
{
	struct vm *vm = st->vm;
	prec_set_str(&st->rep, &st->rep.body, "name", vm->name);
	prec_set_str(&st->rep, &st->rep.body, "id", vm->id);
	prec_set_str(&st->rep, &st->rep.body, "accel", accel_name(vm->qc.accel));
	if (st->warning[0])
		prec_set_str(&st->rep, &st->rep.body, "warning", st->warning);
	struct vm_session *run = TAILQ_FIRST(&vm->sessions);
	if (run && run->client)
		prec_set_uint(&st->rep, &st->rep.body, "session", run->sid);
	/* detached: answered once the container runs, as podman run -d is */
	if ((run && run->client) || !vm_wait_run(vm, st->c, &st->rep))
		client_send(st->c, &st->rep);
	start_free(st);
	if (vm->stop_on_start) {
		vm_stop(vm, "asked while it was being created");
		return;
	}
	log_info("%s: VMM pid %d (%s, %u vCPU, %u MiB)", vm->name, vm->pid, accel_name(vm->qc.accel), vm->qc.cpus,
		 vm->qc.mem_mib);
}

/* The guest's RAM: a memfd of its size, kept (vm->ram_fd) so that a snapshot can have it
 * copied while the VM is paused. Pages are allocated as the guest touches them. */
static int vm_ram_new(struct vm *vm)
{
	int fd = memfd_create("fcvm-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)vm->qc.mem_mib << 20) < 0 || (vm->ram_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static int open_ro(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Everything the VMM gets, in enum vmm_fd order; then the launcher starts it. */
static void spawn_vmm(struct vm_start *st)
{
	struct vm *vm = st->vm;
	struct assets a;
	char err[512];
	int fds[VFD__COUNT];
	for (int i = 0; i < VFD__COUNT; i++)
		fds[i] = -1;
	if (assets_load(vm->sup->inst->assets_dir, &a, err, sizeof(err)) < 0) {
		start_fail(st, PE_NOT_FOUND, "%s", err);
		return;
	}
	fds[VFD_QMP] = make_listener(vm, "qmp.sock");
	fds[VFD_AGENT] = make_listener(vm, "agent.sock");
	fds[VFD_KERNEL] = open_ro(a.kernel);
	fds[VFD_INITRD] = open_ro(a.initramfs);
	fds[VFD_ROOTFS] = open_ro(a.rootfs);
	fds[VFD_DISK] = st->disk_fd;
	st->disk_fd = -1;
	fds[VFD_IMAGE] = st->image_fd;
	st->image_fd = -1;
	vm->image_fd = fds[VFD_IMAGE] < 0 ? -1 : fcntl(fds[VFD_IMAGE], F_DUPFD_CLOEXEC, 3); /* for snapshots */
	fds[VFD_CONSOLE] = openat(vm->dirfd, "console.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	/* a clone's RAM is its snapshot's sealed template; a new VM's, its own memfd */
	if (vm->qc.restore) {
		fds[VFD_MEM] = st->ram_fd;
		st->ram_fd = -1;
	} else {
		fds[VFD_MEM] = vm_ram_new(vm);
	}
	for (int i = 0; i < VFD__COUNT; i++)
		if (fds[i] < 0) {
			static const char *const what[] = {"QMP socket", "agent socket", "kernel",
							   "initramfs",	 "rootfs",	 "disk",
							   "image",	 "console file", "RAM"};
			int e = fds[i] == -1 ? errno : -fds[i];
			for (int j = 0; j < VFD__COUNT; j++)
				close_fdp(&fds[j]);
			start_fail(st, PE_INTERNAL, "cannot open the VM's %s: %s", what[i], strerror(e));
			return;
		}

	struct pmsg req;
	bool tap = st->net_fds[0] >= 0;
	enum proto_op op =
	    vm->qc.restore ? (tap ? OP_VMM_RESTORE_NET : OP_VMM_RESTORE) : (tap ? OP_VMM_SPAWN_NET : OP_VMM_SPAWN);
	pmsg_init(&req, PK_REQUEST, op, 0);
	prec_set_str(&req, &req.body, "vm", vm->name);
	int rc = vmconfig_put(&req, &vm->qc);
	for (int i = 0; i < VFD__COUNT; i++)
		pmsg_add_fd(&req, fds[i]); /* the message owns them now */
	if (vm->qc.restore) {		   /* the device state to load, the snapshot's disk, then (below) the tap */
		pmsg_add_fd(&req, st->state_fd);
		pmsg_add_fd(&req, st->disk_base_fd);
		st->state_fd = st->disk_base_fd = -1;
	}
	if (tap) { /* the last: once QEMU has it, only QEMU holds the VM's namespace */
		pmsg_add_fd(&req, st->net_fds[0]);
		st->net_fds[0] = -1;
	}
	if (rc < 0) {
		pmsg_free(&req);
		start_fail(st, PE_INTERNAL, "the VM's configuration does not fit its request");
		return;
	}
	peer_call(&vm->sup->launcher, &req, on_vmm_spawned, st);
	pmsg_free(&req);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct vm_start *st = arg;
	(void)fd;
	(void)what;
	st->retry(st);
}

/* A helper is (re)starting (the launcher brings it up on demand): ask again shortly. */
bool start_retry_later(struct vm_start *st, const struct pmsg *rep, void (*again)(struct vm_start *st))
{
	if (rep->err_code != PE_UNAVAILABLE || ++st->helper_tries >= HELPER_TRIES_MAX || st->vm->sup->stopping)
		return false;
	struct timeval tv = {0, HELPER_RETRY_MS * 1000};
	st->retry = again;
	event_base_once(st->vm->sup->base, -1, EV_TIMEOUT, on_retry, st, &tv);
	return true;
}

static void on_net(struct pmsg *rep, void *arg);

static void ask_for_net(struct vm_start *st)
{
	helper_call(st->vm->sup, HELPER_NETD, &st->net_req, on_net, st);
}

static void on_disk(struct pmsg *rep, void *arg)
{
	struct vm_start *st = arg;
	if (start_retry_later(st, rep, start_ask_for_disk))
		return;
	if (rep->err_code != PE_OK) {
		start_fail(st, rep->err_code, "no disk for the VM: %s", rep->err_msg ? rep->err_msg : "?");
		return;
	}
	st->vm->disk_made = true;
	st->disk_fd = pmsg_take_fd(rep, 0);
	const char *backend = prec_str(&rep->body, "backend");
	size_t used = strlen(st->warning);
	if (backend && strcmp(backend, "copy") == 0)
		snprintf(
		    st->warning + used, sizeof(st->warning) - used,
		    "%sno copy-on-write data directory: VM disks are sparse copies (see `fcvm setup --btrfs-loop`)",
		    used ? "; " : "");
	start_have_disk(st);
}

void start_have_disk(struct vm_start *st)
{
	if (!st->has_net) {
		spawn_vmm(st);
		return;
	}
	st->helper_tries = 0;
	ask_for_net(st);
}

static void on_net(struct pmsg *rep, void *arg)
{
	struct vm_start *st = arg;
	if (start_retry_later(st, rep, ask_for_net))
		return;
	if (rep->err_code != PE_OK) {
		start_fail(st, rep->err_code, "no network for the VM: %s", rep->err_msg ? rep->err_msg : "?");
		return;
	}
	if (vm_net_made(st->vm, rep, st->net_fds) < 0) {
		start_fail(st, PE_INTERNAL, "netd's answer does not fit the VM's configuration");
		return;
	}
	if (strcmp(st->vm->network, "bridged") == 0) {
		close_fdp(&st->net_fds[1]); /* pasta's only */
		close_fdp(&st->net_fds[2]);
	}
	spawn_vmm(st);
}

static void random_id(char *out, size_t n)
{
	unsigned char b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		memset(b, 0, sizeof(b)); /* getrandom cannot fail once the pool is up */
	for (size_t i = 0; i < sizeof(b) && 2 * i + 2 < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* The container's proc_start, kept until the agent is up. */
static void build_run_start(struct vm *vm, const struct pmsg *req, uint32_t sid)
{
	struct pmsg *m = &vm->run_start;
	vm_proc_start(m, sid, "run", &req->body);
	/* the demo image is pre-loaded in the rootfs's image store: no podman load */
	const char *image = prec_str(&req->body, "image");
	if (image &&
	    (strcmp(image, "demo") == 0 || strcmp(image, "fcvm-demo") == 0 || strcmp(image, FCVM_DEMO_REF) == 0))
		prec_set_str(m, &m->body, "image", FCVM_DEMO_REF);
}

static bool pick_accel(const char *asked, struct vm *vm, char *warning, size_t n)
{
	bool kvm = vm->sup->kvm_usable;
	if (!asked || strcmp(asked, "auto") == 0) {
		vm->qc.accel = kvm ? ACCEL_KVM : ACCEL_TCG;
		if (!kvm)
			snprintf(warning, n,
				 "no hardware KVM module (kvm_intel/kvm_amd): software emulation (TCG), much slower");
		return true;
	}
	if (strcmp(asked, "tcg") == 0) {
		vm->qc.accel = ACCEL_TCG;
		return true;
	}
	if (strcmp(asked, "kvm") == 0) {
		vm->qc.accel = ACCEL_KVM;
		return true;
	}
	return false;
}

void vm_run(struct client *c, const struct pmsg *req)
{
	struct supervisor *s = c->sup;
	const char *name = prec_str(&req->body, "name");
	char gen[32], err[256];
	uint64_t u;
	bool b;
	bool clone = req->op->id == OP_SNAPSHOT_RUN;

	if (!name) {
		random_id(gen, 9);
		char tmp[16];
		snprintf(tmp, sizeof(tmp), "vm-%.8s", gen);
		snprintf(gen, sizeof(gen), "%s", tmp);
		name = gen;
	}
	if (vm_find_own(s, c->uid, name)) {
		client_refuse(c, req, PE_EXISTS, "a VM named '%s' exists already (remove it with `fcvm rm %s`)", name,
			      name);
		return;
	}
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vm_start *st = calloc(1, sizeof(*st));
	if (!vm || !st) {
		free(vm);
		free(st);
		client_refuse(c, req, PE_INTERNAL, "out of memory");
		return;
	}
	vm->sup = s;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	random_id(vm->id, sizeof(vm->id));
	/* a clone's image, size and acceleration are its snapshot's (vm_clone.c) */
	snprintf(vm->image, sizeof(vm->image), "%s", clone ? "" : prec_str(&req->body, "image"));
	if (clone && snapshot_store_tag(c->uid, c->uid, prec_str(&req->body, "tag"), vm->clone_of, sizeof(vm->clone_of),
					err, sizeof(err)) < 0) {
		free(vm);
		free(st);
		client_refuse(c, req, PE_INVALID, "%s", err);
		return;
	}
	snprintf(vm->health, sizeof(vm->health), "starting");
	vm->owner = c->uid;
	vm->created_ms = now_realtime_ms();
	vm->exit_code = -1;
	vm->log_fd = -1;
	vm->dirfd = -1;
	vm->ram_fd = -1;
	vm->image_fd = -1;
	vm->next_sid = 1;
	vm->remove_on_stop = prec_bool(&req->body, "remove", &b) && b;
	vm->qc.cpus = prec_uint(&req->body, "cpu", &u) ? (unsigned)u : VM_DEFAULT_CPUS;
	vm->qc.mem_mib = prec_uint(&req->body, "mem", &u) ? (unsigned)u : VM_DEFAULT_MEM;
	vm->qc.debug_console = getenv("FCVM_DEBUG_CONSOLE") != NULL;
	vm->timer = vm_timer_new(vm);
	TAILQ_INIT(&vm->sessions);
	TAILQ_INIT(&vm->waiters);
	TAILQ_INSERT_TAIL(&s->vms, vm, link);
	vm->status = VM_CREATING; /* until the VMM runs (start_fail makes it stopped, then removes it) */

	st->vm = vm;
	st->c = c;
	st->image_fd = clone ? -1 : pmsg_take_fd((struct pmsg *)req, 0); /* the request's only fd: ours now */
	st->disk_fd = st->ram_fd = st->state_fd = st->disk_base_fd = -1;
	if (clone) {
		snprintf(st->tag, sizeof(st->tag), "%s", vm->clone_of);
		st->want_cpu = prec_uint(&req->body, "cpu", &u) ? (unsigned)u : 0;
		st->want_mem = prec_uint(&req->body, "mem", &u) ? (unsigned)u : 0;
	}
	st->net_fds[0] = st->net_fds[1] = st->net_fds[2] = -1;
	st->cache_try = -1;
	pmsg_init_reply(&st->rep, req);
	client_hold(c);
	int rc = vm_net_parse(vm, &st->net_req, &req->body, err, sizeof(err));
	st->has_net = rc == 0 && strcmp(vm->network, "none") != 0;
	st->net_asked = prec_has(&req->body, "network");
	if (rc < 0) {
		start_fail(st, rc == -EPERM ? PE_DENIED : PE_INVALID, "%s", err);
		return;
	}
	if (!clone && !pick_accel(prec_str(&req->body, "accel"), vm, st->warning, sizeof(st->warning))) {
		start_fail(st, PE_INVALID, "--accel must be auto, kvm or tcg");
		return;
	}
	enum vmm_kind kind;
	int vrc = clone ? PE_OK : vmm_choose(s, prec_str(&req->body, "vmm"), &kind, err, sizeof(err));
	if (vrc) {
		start_fail(st, vrc, "%s", err);
		return;
	}
	if (!clone && !prec_has(&req->body, "cpu") &&
	    ((vm->qc.accel == ACCEL_TCG && s->host_cpus < VM_TCG_SMP_MIN_HOST_CPUS) || s->host_cpus < VM_DEFAULT_CPUS))
		vm->qc.cpus = 1;
	/* the owner's quotas (a clone's size is its snapshot's: checked once it is known) */
	int qrc = clone ? PE_OK : quota_check_vm(s, vm, err, sizeof(err));
	if (qrc) {
		start_fail(st, qrc, "%s", err);
		return;
	}
	bool detach = prec_bool(&req->body, "detach", &b) && b;
	vm->foreground = !detach;
	struct vm_session *run = vm_session_new(vm, detach ? NULL : c, true);
	if (!run) {
		start_fail(st, PE_INTERNAL, "out of memory");
		return;
	}
	if (clone) {
		/* The container runs already, in the snapshot's memory, as session 1 (the first
		 * the source VM made): follow it from wherever its output is (resync). Sessions
		 * of our own are numbered above anything the source could have handed out. */
		run->sid = 1;
		run->resync = true;
		vm->run_started = true;
		vm->next_sid = 1000;
	} else {
		build_run_start(vm, req, run->sid);
	}

	snprintf(vm->dirname, sizeof(vm->dirname), "%s", vm->id);
	if (mkdirat(s->vms_dirfd, vm->dirname, 0700) < 0 && errno != EEXIST) {
		start_fail(st, PE_INTERNAL, "cannot create the VM's directory: %s", strerror(errno));
		return;
	}
	vm->dirfd = openat(s->vms_dirfd, vm->dirname, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	vm->log_fd = vm->dirfd < 0 ? -1 : vm_log_open_new(vm);
	vm->log_max = prec_uint(&req->body, "log_max", &u) ? u : VM_LOG_MAX_DEFAULT;
	if (vm->dirfd < 0 || vm->log_fd < 0) {
		start_fail(st, PE_INTERNAL, "cannot open the VM's directory: %s", strerror(errno));
		return;
	}
	if (clone)
		clone_ask_for_snapshot(st);
	else if (cache_plan(st, req))
		cache_next(st);
	else
		start_ask_for_disk(st);
}

void start_ask_for_disk(struct vm_start *st)
{
	struct pmsg dreq;
	char disk[80];
	snprintf(disk, sizeof(disk), "vm-%s", st->vm->id);
	pmsg_init(&dreq, PK_REQUEST, OP_STORE_CREATE, 0);
	prec_set_str(&dreq, &dreq.body, "name", disk);
	prec_set_uint(&dreq, &dreq.body, "size", VM_DISK_SIZE);
	helper_call(st->vm->sup, HELPER_STORED, &dreq, on_disk, st);
	pmsg_free(&dreq);
}
