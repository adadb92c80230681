/* Forged requests to the launcher proper, as a compromised supervisor would send them: raw
 * frames on its channel, decoded and checked by the launcher's own code
 * (launcher_read_channel), with a real spawner behind it. Each refusal must be an error reply
 * and an `audit:` line, and must start nothing; a well-formed request is the control that
 * does start something (QEMU's place taken by /bin/true, jailed as QEMU would be, as
 * nobody). Runs as root, as system mode's spawner does. */
#include <fcntl.h>
#include <msgpack.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/vmconfig.h"
#include "launcher/launcher.h"
#include "proto/chan.h"
#include "tests/unit/check.h"

static struct instance inst;
static struct launcher_setup ls;
static struct launcher L;
static int sup_end = -1; /* the "supervisor's" end of the launcher's channel */
static int log_fd = -1;	 /* what the launcher logs, for its audit lines */

static void need_root(void)
{
	if (geteuid() != 0)
		SKIP("needs root (the QEMU jail's namespaces)");
}

static void setup(void)
{
	int sv[2];
	need_root();
	snprintf(inst.state_dir, sizeof(inst.state_dir), "/nonexistent");
	snprintf(inst.tag, sizeof(inst.tag), "t%07u", (unsigned)getpid() % 10000000);
	inst.system_mode = true;
	inst.mode_name = "system";
	inst.sup_uid = inst.vmm_uid = 65534; /* nobody: no uid range of its own for VMMs here */
	inst.sup_gid = inst.vmm_gid = 65534;
	ls.inst = &inst;
	for (int i = 0; i < PROG__COUNT; i++)
		ls.exe_fd[i] = -1;
	ls.exe_fd[PROG_QEMU] = open("/bin/true", O_PATH | O_CLOEXEC);
	ls.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	ls.data_fd = ls.listen_fd = ls.vms_fd = ls.cmd_go = -1;
	CHECK(ls.exe_fd[PROG_QEMU] >= 0 && ls.devnull >= 0);
	L.ls = &ls;
	CHECK_EQ(launcher_policy_limits(&L), 0);
	L.tsc_khz = 2000000;
	L.kvm_usable = false;
	L.spawner = spawner_start(&ls);
	CHECK(L.spawner >= 0);
	CHECK(chan_pair(sv) == 0);
	L.chan = sv[0];
	sup_end = sv[1];
	log_fd = memfd_create("launcher-log", MFD_CLOEXEC);
	CHECK(log_fd >= 0);
}

/* ---- raw frames: [version, kind, op, id, body, error] ---- */

struct frame {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void pstr(struct frame *f, const char *s)
{
	msgpack_pack_str(&f->pk, strlen(s));
	msgpack_pack_str_body(&f->pk, s, strlen(s));
}

static void kv_str(struct frame *f, const char *k, const char *v)
{
	pstr(f, k);
	pstr(f, v);
}

static void kv_uint(struct frame *f, const char *k, uint64_t v)
{
	pstr(f, k);
	msgpack_pack_uint64(&f->pk, v);
}

static void kv_bool(struct frame *f, const char *k, bool v)
{
	pstr(f, k);
	if (v)
		msgpack_pack_true(&f->pk);
	else
		msgpack_pack_false(&f->pk);
}

/* A request frame for op with nfields fields to follow (the caller packs them). */
static void begin(struct frame *f, const char *op, uint32_t id, uint32_t nfields)
{
	msgpack_sbuffer_init(&f->sb);
	msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
	msgpack_pack_array(&f->pk, 6);
	msgpack_pack_uint32(&f->pk, PROTO_VERSION);
	msgpack_pack_uint32(&f->pk, PK_REQUEST);
	pstr(f, op);
	msgpack_pack_uint32(&f->pk, id);
	msgpack_pack_map(&f->pk, nfields);
}

/* The usual VM fields: 5 of them (vm, cpus, mem, accel, debug). */
static void vm_fields(struct frame *f, unsigned cpus, unsigned mem, const char *accel)
{
	kv_str(f, "vm", "forged");
	kv_uint(f, "cpus", cpus);
	kv_uint(f, "mem", mem);
	kv_str(f, "accel", accel);
	pstr(f, "debug");
	msgpack_pack_false(&f->pk);
}

/* 8 fds as vmm_spawn takes them: two listening sockets, five files, a console file. */
/* A RAM memfd of MIB MiB (sparse: nothing is allocated). */
static int ram_memfd(unsigned mib)
{
	int fd = memfd_create("vm-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)mib << 20) == 0);
	return fd;
}

static unsigned vm_fds(int fds[VFD__COUNT], bool dir_for_kernel)
{
	for (int i = 0; i < 2; i++) {
		fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(fds[i] >= 0);
	}
	for (int i = 2; i < 8; i++) {
		fds[i] = memfd_create("vm-file", MFD_CLOEXEC);
		CHECK(fds[i] >= 0);
	}
	if (dir_for_kernel) {
		close(fds[2]);
		fds[2] = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	fds[VFD_MEM] = ram_memfd(512);
	return VFD__COUNT;
}

/* Send the frame with fds, let the launcher serve it (its log to log_fd), read the reply. */
static void serve(struct frame *f, const int *fds, unsigned nfds, struct pmsg *rep)
{
	struct perr e;
	msgpack_pack_nil(&f->pk); /* the envelope's error: none in a request */
	CHECK(chan_send(sup_end, f->sb.data, f->sb.size, fds, nfds) == 0);
	msgpack_sbuffer_destroy(&f->sb);
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	int saved = dup(2);
	CHECK(saved >= 0 && dup2(log_fd, 2) == 2);
	bool open_still = launcher_read_channel(&L);
	dup2(saved, 2);
	close(saved);
	CHECK(open_still);
	CHECK_EQ(chan_recv_msg(sup_end, rep, &e), 1);
}

static bool logged(const char *what)
{
	static char buf[65536];
	ssize_t n = pread(log_fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, what) != NULL;
}

static void expect_refused(const struct pmsg *rep, int code, const char *audit)
{
	if (rep->err_code != code || !logged(audit))
		fprintf(stderr, "reply %d (%s), wanted %d and an audit line with '%s'\n", rep->err_code,
			rep->err_msg ? rep->err_msg : "", code, audit);
	CHECK_EQ(rep->err_code, code);
	CHECK(logged("audit:"));
	CHECK(logged(audit));
	CHECK(!prec_has(&rep->body, "pid"));
}

/* Nothing was started: no child of ours is left to reap, now or shortly after. */
static void expect_nothing_started(void)
{
	CHECK(waitpid(-1, NULL, WNOHANG) <= 0);
}

TEST(well_formed_vmm_spawn_starts_the_vmm)
{
	struct frame f;
	struct pmsg rep;
	int fds[VFD__COUNT + 2];
	setup();
	begin(&f, "vmm_spawn", 1, 5);
	vm_fields(&f, 1, 512, "tcg");
	vm_fds(fds, false);
	int console = dup(fds[VFD_CONSOLE]);
	serve(&f, fds, VFD__COUNT, &rep);
	uint64_t pid = 0;
	if (rep.err_code) {
		char buf[512] = "";
		ssize_t n = pread(console, buf, sizeof(buf) - 1, 0);
		fprintf(stderr, "refused: %s; console: %.*s\n", rep.err_msg, (int)(n > 0 ? n : 0), buf);
	}
	CHECK_EQ(rep.err_code, PE_OK);
	CHECK(prec_uint(&rep.body, "pid", &pid) && pid > 0);
	/* /bin/true in QEMU's place: it ran (jailed) and exited 0, our child (CLONE_PARENT) */
	int st = 0;
	CHECK(waitpid((pid_t)pid, &st, 0) == (pid_t)pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	pmsg_free(&rep);
}

TEST(extra_argv_refused)
{
	struct frame f;
	struct pmsg rep;
	int fds[VFD__COUNT + 2];
	setup();
	begin(&f, "vmm_spawn", 2, 6);
	vm_fields(&f, 1, 512, "tcg");
	pstr(&f, "argv");
	msgpack_pack_array(&f.pk, 2);
	pstr(&f, "-object");
	pstr(&f, "memory-backend-file,id=m,mem-path=/etc/shadow");
	serve(&f, fds, vm_fds(fds, false), &rep);
	expect_refused(&rep, PE_INVALID, "refused request from the supervisor");
	expect_nothing_started();
	pmsg_free(&rep);
}

TEST(object_smuggled_in_a_string_field_refused)
{
	static const char *const macs[] = {"aa:bb,-object,x", "aa:bb:cc:dd:ee,x", "aa:bb:cc:dd:ee:fg"};
	setup();
	for (size_t i = 0; i < 3; i++) {
		struct frame f;
		struct pmsg rep;
		int fds[VFD__COUNT + 2];
		begin(&f, "vmm_spawn_net", 3, 9);
		vm_fields(&f, 1, 512, "tcg");
		kv_str(&f, "guest_addr", "10.0.0.2");
		kv_uint(&f, "guest_prefix", 30);
		kv_str(&f, "guest_gw", "10.0.0.1");
		kv_str(&f, "guest_mac", macs[i]);
		unsigned n = vm_fds(fds, false);
		fds[n++] = open("/dev/net/tun", O_RDWR | O_CLOEXEC); /* a tap's kind */
		if (fds[n - 1] < 0)
			SKIP("no /dev/net/tun");
		serve(&f, fds, n, &rep);
		/* too short or long for the schema, or not a MAC: refused either way */
		CHECK(rep.err_code == PE_INVALID);
		CHECK(logged("audit:"));
		pmsg_free(&rep);
	}
	/* an address with a second option after it */
	struct frame f;
	struct pmsg rep;
	int fds[VFD__COUNT + 2];
	begin(&f, "vmm_spawn_net", 4, 9);
	vm_fields(&f, 1, 512, "tcg");
	kv_str(&f, "guest_addr", "1.2.3.4,x=y");
	kv_uint(&f, "guest_prefix", 30);
	kv_str(&f, "guest_gw", "10.0.0.1");
	kv_str(&f, "guest_mac", "02:fc:00:00:00:02");
	unsigned n = vm_fds(fds, false);
	fds[n++] = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	serve(&f, fds, n, &rep);
	expect_refused(&rep, PE_INVALID, "the guest network must be IPv4 addresses");
	expect_nothing_started();
	pmsg_free(&rep);
}

/* The guest's RAM: of the size asked for, a real memfd, and, for a clone, a template sealed
 * against writes (QEMU 7.2 opens it read-write: only the seals keep a clone from changing
 * what every other clone maps). */
TEST(ram_not_fitting_the_request_refused)
{
	setup();
	for (int kind = 0; kind < 4; kind++) {
		struct frame f;
		struct pmsg rep;
		int fds[VFD__COUNT + 3];
		bool restore = kind >= 2;
		begin(&f, restore ? "vmm_restore" : "vmm_spawn", 20 + (unsigned)kind, restore ? 6 : 5);
		vm_fields(&f, 1, 512, "tcg");
		if (restore)
			kv_bool(&f, "restore", true);
		unsigned n = vm_fds(fds, false);
		close(fds[VFD_MEM]);
		const char *audit = "the RAM memfd is";
		switch (kind) {
		case 0: /* too small */
			fds[VFD_MEM] = ram_memfd(256);
			break;
		case 1: /* a booting VM's RAM sealed against writes */
			fds[VFD_MEM] = ram_memfd(512);
			CHECK(fcntl(fds[VFD_MEM], F_ADD_SEALS, F_SEAL_WRITE) == 0);
			audit = "sealed against writes";
			break;
		case 2: /* a template without seals */
			fds[VFD_MEM] = ram_memfd(512);
			audit = "not sealed against writes";
			break;
		case 3: /* a template sealed for writes but still growable and unsealable */
			fds[VFD_MEM] = ram_memfd(512);
			CHECK(fcntl(fds[VFD_MEM], F_ADD_SEALS, F_SEAL_WRITE) == 0);
			audit = "not sealed against writes";
			break;
		}
		if (restore) { /* the device state and the snapshot's disk */
			fds[n++] = memfd_create("vm-state", MFD_CLOEXEC);
			fds[n++] = memfd_create("vm-disk-base", MFD_CLOEXEC);
		}
		serve(&f, fds, n, &rep);
		expect_refused(&rep, PE_INVALID, audit);
		expect_nothing_started();
		pmsg_free(&rep);
	}
}

TEST(ram_that_is_no_memfd_refused)
{
	struct frame f;
	struct pmsg rep;
	int fds[VFD__COUNT + 2];
	setup();
	begin(&f, "vmm_spawn", 30, 5);
	vm_fields(&f, 1, 512, "tcg");
	unsigned n = vm_fds(fds, false);
	close(fds[VFD_MEM]);
	char path[] = "/tmp/fcvm-sbx-ram.XXXXXX";
	fds[VFD_MEM] = mkostemp(path, O_CLOEXEC); /* a file of the right size, but on disk */
	CHECK(fds[VFD_MEM] >= 0);
	unlink(path);
	CHECK(ftruncate(fds[VFD_MEM], (off_t)512 << 20) == 0);
	serve(&f, fds, n, &rep);
	expect_refused(&rep, PE_INVALID, "memfd");
	expect_nothing_started();
	pmsg_free(&rep);
}

TEST(restore_flag_without_vmm_restore_refused)
{
	struct frame f;
	struct pmsg rep;
	int fds[VFD__COUNT + 2];
	setup();
	begin(&f, "vmm_spawn", 31, 6);
	vm_fields(&f, 1, 512, "tcg");
	kv_bool(&f, "restore", true);
	serve(&f, fds, vm_fds(fds, false), &rep);
	expect_refused(&rep, PE_INVALID, "restore comes with vmm_restore");
	expect_nothing_started();
	pmsg_free(&rep);
}

TEST(a_path_instead_of_an_fd_refused)
{
	struct frame f;
	struct pmsg rep;
	int fds[VFD__COUNT + 2];
	setup();
	/* a kernel path where the kernel's fd belongs */
	begin(&f, "vmm_spawn", 5, 6);
	vm_fields(&f, 1, 512, "tcg");
	kv_str(&f, "kernel", "/boot/vmlinuz");
	serve(&f, fds, vm_fds(fds, false), &rep);
	expect_refused(&rep, PE_INVALID, "refused request from the supervisor");
	pmsg_free(&rep);
	/* a directory where a file belongs: the fd's kind is checked */
	begin(&f, "vmm_spawn", 6, 5);
	vm_fields(&f, 1, 512, "tcg");
	serve(&f, fds, vm_fds(fds, true), &rep);
	expect_refused(&rep, PE_INVALID, "refused request from the supervisor");
	/* and too few fds */
	begin(&f, "vmm_spawn", 7, 5);
	vm_fields(&f, 1, 512, "tcg");
	unsigned n = vm_fds(fds, false);
	close(fds[--n]);
	serve(&f, fds, n, &rep);
	CHECK(rep.err_code == PE_INVALID);
	expect_nothing_started();
	pmsg_free(&rep);
}

TEST(out_of_policy_vm_refused)
{
	static const struct {
		unsigned cpus, mem;
		const char *accel, *audit;
	} bad[] = {{64, 512, "tcg", "beyond the policy"},
		   {1, 1u << 20, "tcg", "beyond the policy"},
		   {1, 512, "kvm", "no usable KVM"}};
	setup();
	for (size_t i = 0; i < 3; i++) {
		struct frame f;
		struct pmsg rep;
		int fds[VFD__COUNT + 2];
		begin(&f, "vmm_spawn", 8, 5);
		vm_fields(&f, bad[i].cpus, bad[i].mem, bad[i].accel);
		serve(&f, fds, vm_fds(fds, false), &rep);
		expect_refused(&rep, PE_DENIED, bad[i].audit);
		pmsg_free(&rep);
	}
	expect_nothing_started();
}

/* pasta's ports: parsed and checked by the launcher as netd checks them */
static void pasta_req(struct frame *f, uint32_t vmm_pid, const char *host_ip, unsigned host_port)
{
	begin(f, "pasta_spawn", 9, 3);
	kv_str(f, "vm", "forged");
	kv_uint(f, "vmm_pid", vmm_pid);
	pstr(f, "ports");
	msgpack_pack_array(&f->pk, 1);
	msgpack_pack_map(&f->pk, host_ip ? 4 : 3);
	if (host_ip)
		kv_str(f, "host_ip", host_ip);
	kv_uint(f, "host_port", host_port);
	kv_uint(f, "guest_port", 80);
	kv_str(f, "proto", "tcp");
}

static unsigned ns_fds(int fds[2])
{
	fds[0] = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
	fds[1] = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	CHECK(fds[0] >= 0 && fds[1] >= 0);
	return 2;
}

TEST(pasta_out_of_policy_refused)
{
	struct frame f;
	struct pmsg rep;
	int fds[2];
	setup();
	ls.exe_fd[PROG_PASTA] = open("/bin/true", O_PATH | O_CLOEXEC);
	L.vmm_pid[0] = 424242; /* a VMM of ours, as far as the launcher knows */
	pasta_req(&f, 424242, NULL, 80);
	serve(&f, fds, ns_fds(fds), &rep);
	expect_refused(&rep, PE_DENIED, "outside the ports VMs may publish");
	pmsg_free(&rep);
	pasta_req(&f, 424242, "1.2.3.4/0", 8080);
	serve(&f, fds, ns_fds(fds), &rep);
	expect_refused(&rep, PE_DENIED, "is not an IPv4 address");
	pmsg_free(&rep);
	/* a pid that is not one of our VMMs */
	pasta_req(&f, 1, NULL, 8080);
	serve(&f, fds, ns_fds(fds), &rep);
	expect_refused(&rep, PE_DENIED, "not a VMM of ours");
	pmsg_free(&rep);
	expect_nothing_started();
}

TEST(spawn_of_a_non_helper_refused)
{
	struct frame f;
	struct pmsg rep;
	setup();
	begin(&f, "spawn", 10, 1);
	kv_str(&f, "helper", "sh");
	serve(&f, NULL, 0, &rep);
	expect_refused(&rep, PE_DENIED, "not a helper");
	pmsg_free(&rep);
	/* a path is not even an identifier */
	begin(&f, "spawn", 11, 1);
	kv_str(&f, "helper", "../../bin/sh");
	serve(&f, NULL, 0, &rep);
	expect_refused(&rep, PE_INVALID, "refused request from the supervisor");
	pmsg_free(&rep);
	/* an operation the launcher does not serve */
	begin(&f, "disk_create", 12, 2);
	kv_str(&f, "name", "x");
	kv_uint(&f, "size", 1u << 20);
	serve(&f, NULL, 0, &rep);
	expect_refused(&rep, PE_DENIED, "the launcher does not serve it");
	pmsg_free(&rep);
	expect_nothing_started();
}

/* The spawner checks its orders too: whatever the launcher proper sends it. */
TEST(spawner_refuses_orders_outside_its_table)
{
	static struct spawn_order o;
	char msg[256];
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	setup();
	o.prog = PROG__COUNT;
	CHECK(spawner_ask(L.spawner, &o, &fd, 1, msg, sizeof(msg)) < 0);
	CHECK(strstr(msg, "no program") != NULL);
	o.prog = PROG_QEMU; /* too few fds */
	CHECK(spawner_ask(L.spawner, &o, &fd, 1, msg, sizeof(msg)) < 0);
	o.prog = PROG_NETD; /* arguments for a program whose command line is the spawner's own */
	o.nargs = 1;
	CHECK(spawner_ask(L.spawner, &o, &fd, 1, msg, sizeof(msg)) < 0);
	o.prog = PROG_QEMU; /* a slot beyond the table */
	o.nargs = 0;
	o.slot = MAX_VMMS;
	int fds[VFD__COUNT + 2];
	unsigned n = vm_fds(fds, false);
	CHECK(spawner_ask(L.spawner, &o, fds, n, msg, sizeof(msg)) < 0);
	CHECK(strstr(msg, "slot") != NULL);
	o.slot = 0; /* unterminated arguments */
	o.nargs = 1;
	memset(o.args, 'x', sizeof(o.args));
	CHECK(spawner_ask(L.spawner, &o, fds, n, msg, sizeof(msg)) < 0);
	expect_nothing_started();
}
