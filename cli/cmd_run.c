/* fcvm podman run [OPTIONS] IMAGE [CMD...]: the VM's options (name, size, network, ports) and
 * podman run's own (usage_text), in Podman's order: options after IMAGE are the command's.
 *
 * The image is opened here, as the user, and handed to the supervisor as an fd: the built-in
 * demo image, an OCI archive path, or an image in the user's podman storage (exported with
 * `podman save`). The supervisor never opens a path on a client's behalf. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/assets.h"
#include "common/util.h"
#include "proto/stream.h"

static const char usage_text[] =
    "usage: fcvm podman run [OPTIONS] IMAGE [CMD [ARG...]]\n"
    "  the VM:  --name NAME, --cpu N, --mem MiB, --accel auto|kvm|tcg, --rm, -d/--detach,\n"
    "           --network bridged|rootless|none, -p/--publish [IP:]HOST:GUEST[/tcp|udp],\n"
    "           --no-snapshot (or FCVM_NO_SNAPSHOT=1): boot, neither from nor into the startup cache\n"
    "           --vmm auto|qemu|firecracker (auto: Firecracker where installed with hardware KVM)\n"
    "  as podman run: -i, -t, -e/--env KEY[=VALUE], --env-file FILE, -w/--workdir DIR,\n"
    "           -u/--user USER[:GROUP], --hostname NAME, --entrypoint CMD, -l/--label K=V,\n"
    "           --read-only, --tmpfs DIR[:OPTS], --cap-add CAP, --cap-drop CAP, --privileged,\n"
    "           --restart no, --health-cmd CMD, --health-interval SECONDS, --health-retries N,\n"
    "           --log-opt max-size=SIZE (10m, 1g...: the container's log rotates past it; 32 MiB)\n"
    "  IMAGE: 'demo' (the built-in busybox image), an OCI archive file, or an image in your\n"
    "  podman storage (podman images). Options after IMAGE are the command's.\n";

/* podman run options that have no meaning here yet, and why (refused, never ignored) */
static const struct {
	const char *name;
	const char *why;
} refused[] = {
    {"volume", "host directories are not shared into the VM yet"},
    {"mount", "host directories are not shared into the VM yet"},
    {"pod", "each container is a VM of its own: there are no pods"},
    {"pid", "the container's PID namespace is the VM's own"},
    {"ipc", "the container's IPC namespace is the VM's own"},
    {"uts", "use --hostname"},
    {"userns", "the VM is the isolation boundary; user namespaces in the guest are not set up"},
    {"device", "host devices are not passed into the VM"},
    {"gpus", "host devices are not passed into the VM"},
    {"pull", "images come from a file or your podman storage: there is no registry pull yet"},
    {"systemd", "the guest has no systemd"},
};

/* --log-opt max-size=SIZE, podman's spelling: a number with k, m, g (powers of 1000, as
 * podman reads them) or ki, mi, gi (of 1024), a b after either allowed. The log is kept by
 * the supervisor and rotates past that size (one older file kept): no other option applies,
 * and there is no unlimited log. 0, or -1 (said why). */
static int log_opt(struct pmsg *req, const char *arg)
{
	static const struct {
		const char *unit;
		uint64_t mul;
	} units[] = {{"", 1},
		     {"b", 1},
		     {"k", 1000},
		     {"kb", 1000},
		     {"m", 1000000},
		     {"mb", 1000000},
		     {"g", 1000000000},
		     {"gb", 1000000000},
		     {"ki", 1024},
		     {"kib", 1024},
		     {"mi", 1024 * 1024},
		     {"mib", 1024 * 1024},
		     {"gi", 1024 * 1024 * 1024},
		     {"gib", 1024 * 1024 * 1024}};
	if (strncmp(arg, "max-size=", 9) != 0) {
		size_t klen = strcspn(arg, "=");
		fprintf(stderr,
			"fcvm: --log-opt %.*s is not supported: only max-size (fcvm keeps the container's log)\n",
			(int)klen, arg);
		return -1;
	}
	const char *v = arg + 9;
	char digits[32], unit[8];
	size_t nd = strspn(v, "0123456789");
	uint64_t n, mul = 0;
	if (nd > 0 && nd < sizeof(digits) && strlen(v + nd) < sizeof(unit)) {
		memcpy(digits, v, nd);
		digits[nd] = 0;
		size_t i = 0;
		for (; v[nd + i]; i++)
			unit[i] = (char)tolower((unsigned char)v[nd + i]);
		unit[i] = 0;
		for (size_t k = 0; k < ARRAY_LEN(units); k++)
			if (strcmp(units[k].unit, unit) == 0)
				mul = units[k].mul;
	}
	if (!mul || !parse_uint(digits, UINT64_MAX / mul, &n)) {
		fprintf(stderr, "fcvm: --log-opt max-size=%s: %s\n", v,
			strcmp(v, "-1") == 0 ? "unlimited logs are not kept here (at most 1 GiB)"
					     : "wants a size (10m, 512k, 1g...)");
		return -1;
	}
	n *= mul;
	if (n < 4096 || n > (1ull << 30)) {
		fprintf(stderr, "fcvm: --log-opt max-size=%s: from 4 KiB to 1 GiB\n", v);
		return -1;
	}
	prec_set_uint(req, &req->body, "log_max", n);
	return 0;
}

int cli_send_with_fd(int sock, const struct pmsg *req, int fd)
{
	struct pmsg *m = (struct pmsg *)req;
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup < 0 || pmsg_add_fd(m, dup) < 0) {
		if (dup >= 0)
			close(dup);
		return -EINVAL;
	}
	struct perr e;
	int rc = stream_send_msg_fds(sock, m, &e);
	if (rc == -EINVAL)
		fprintf(stderr, "fcvm: '%s' not sent: %s\n", m->op->name, e.msg);
	return rc;
}

static bool is_demo(const char *image)
{
	return strcmp(image, "demo") == 0 || strcmp(image, "fcvm-demo") == 0 || strcmp(image, FCVM_DEMO_REF) == 0;
}

static int open_demo(void)
{
	char dir[PATH_MAX], err[512];
	struct assets a;
	if (assets_dir_default(dir, sizeof(dir)) < 0 || assets_load(dir, &a, err, sizeof(err)) < 0) {
		/* a user without assets of their own uses the host's */
		if (assets_load(FCVM_SYSTEM_ASSETS_DIR, &a, err, sizeof(err)) < 0) {
			fprintf(stderr, "fcvm: %s\n", err);
			return -1;
		}
	}
	int fd = open(a.demo_image, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fprintf(stderr, "fcvm: cannot open the demo image %s: %s (run `sudo fcvm setup`)\n", a.demo_image,
			strerror(errno));
	return fd;
}

static int run_quiet(char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* An image in the user's podman storage, saved as an OCI archive into an unlinked file. */
static int export_podman_image(const char *image)
{
	char *const exists[] = {"podman", "image", "exists", (char *)image, NULL};
	int rc = run_quiet(exists);
	if (rc == 127 || rc < 0)
		return -2; /* no podman here */
	if (rc != 0)
		return -2;
	const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/fcvm-image-XXXXXX", tmpdir);
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "fcvm: cannot make a temporary file in %s: %s\n", tmpdir, strerror(errno));
		return -1;
	}
	char *const save[] = {"podman", "save", "--format", "oci-archive", "-o", path, (char *)image, NULL};
	rc = run_quiet(save);
	/* podman writes a new file at that path: open what it wrote, then unlink the name */
	int img = open(path, O_RDONLY | O_CLOEXEC);
	unlink(path);
	close(fd);
	if (rc != 0 || img < 0) {
		fprintf(stderr, "fcvm: `podman save %s` failed (exit %d)\n", image, rc);
		if (img >= 0)
			close(img);
		return -1;
	}
	return img;
}

static int open_image(const char *image)
{
	if (is_demo(image))
		return open_demo();
	struct stat st;
	if (strchr(image, '/') && stat(image, &st) == 0) {
		if (!S_ISREG(st.st_mode)) {
			fprintf(stderr, "fcvm: %s is not a file (an OCI archive is expected)\n", image);
			return -1;
		}
		int fd = open(image, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fprintf(stderr, "fcvm: cannot open %s: %s\n", image, strerror(errno));
		return fd;
	}
	int fd = export_podman_image(image);
	if (fd == -2)
		fprintf(stderr,
			"fcvm: unknown image '%s': not 'demo', not an OCI archive file, and not in your podman "
			"storage (see `podman images`; pulling from a registry is not supported yet)\n",
			image);
	return fd < 0 ? -1 : fd;
}

static int refuse_option(const char *arg)
{
	const char *name = arg + 2;
	size_t n = strcspn(name, "=");
	for (size_t i = 0; i < ARRAY_LEN(refused); i++)
		if (strlen(refused[i].name) == n && strncmp(refused[i].name, name, n) == 0) {
			fprintf(stderr, "fcvm: podman run --%s is not supported: %s\n", refused[i].name,
				refused[i].why);
			return 1;
		}
	return 0;
}

int cmd_podman(int argc, char **argv, struct cli_opts *o)
{
	if (argc < 2 || strcmp(argv[1], "run") != 0) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	enum {
		O_NAME = 256,
		O_CPU,
		O_MEM,
		O_RM,
		O_NETWORK,
		O_ACCEL,
		O_ENV_FILE,
		O_HOSTNAME,
		O_ENTRYPOINT,
		O_READ_ONLY,
		O_TMPFS,
		O_CAP_ADD,
		O_CAP_DROP,
		O_PRIVILEGED,
		O_RESTART,
		O_HEALTH_CMD,
		O_HEALTH_INTERVAL,
		O_HEALTH_RETRIES,
		O_NO_SNAPSHOT,
		O_LOG_OPT,
		O_VMM,
	};
	static const struct option opts[] = {
	    {"name", required_argument, NULL, O_NAME},
	    {"cpu", required_argument, NULL, O_CPU},
	    {"mem", required_argument, NULL, O_MEM},
	    {"env", required_argument, NULL, 'e'},
	    {"env-file", required_argument, NULL, O_ENV_FILE},
	    {"detach", no_argument, NULL, 'd'},
	    {"interactive", no_argument, NULL, 'i'},
	    {"tty", no_argument, NULL, 't'},
	    {"rm", no_argument, NULL, O_RM},
	    {"network", required_argument, NULL, O_NETWORK},
	    {"accel", required_argument, NULL, O_ACCEL},
	    {"vmm", required_argument, NULL, O_VMM},
	    {"publish", required_argument, NULL, 'p'},
	    {"workdir", required_argument, NULL, 'w'},
	    {"user", required_argument, NULL, 'u'},
	    {"hostname", required_argument, NULL, O_HOSTNAME},
	    {"entrypoint", required_argument, NULL, O_ENTRYPOINT},
	    {"label", required_argument, NULL, 'l'},
	    {"read-only", no_argument, NULL, O_READ_ONLY},
	    {"tmpfs", required_argument, NULL, O_TMPFS},
	    {"cap-add", required_argument, NULL, O_CAP_ADD},
	    {"cap-drop", required_argument, NULL, O_CAP_DROP},
	    {"privileged", no_argument, NULL, O_PRIVILEGED},
	    {"restart", required_argument, NULL, O_RESTART},
	    {"log-opt", required_argument, NULL, O_LOG_OPT},
	    {"health-cmd", required_argument, NULL, O_HEALTH_CMD},
	    {"health-interval", required_argument, NULL, O_HEALTH_INTERVAL},
	    {"health-retries", required_argument, NULL, O_HEALTH_RETRIES},
	    {"no-snapshot", no_argument, NULL, O_NO_SNAPSHOT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const struct field_opt fields[] = {
	    {O_NAME, "name", FO_STR},
	    {O_CPU, "cpu", FO_UINT},
	    {O_MEM, "mem", FO_UINT},
	    {'e', NULL, FO_ENV},
	    {O_ENV_FILE, NULL, FO_ENV_FILE},
	    {O_RM, "remove", FO_FLAG},
	    {O_NETWORK, "network", FO_STR},
	    {O_ACCEL, "accel", FO_STR},
	    {O_VMM, "vmm", FO_STR},
	    {'w', "workdir", FO_STR},
	    {'u', "user", FO_STR},
	    {O_HOSTNAME, "hostname", FO_STR},
	    {O_ENTRYPOINT, "entrypoint", FO_STR},
	    {'l', "labels", FO_LIST},
	    {O_READ_ONLY, "read_only", FO_FLAG},
	    {O_TMPFS, "tmpfs", FO_LIST},
	    {O_CAP_ADD, "cap_add", FO_LIST},
	    {O_CAP_DROP, "cap_drop", FO_LIST},
	    {O_PRIVILEGED, "privileged", FO_FLAG},
	    {O_HEALTH_CMD, "health_cmd", FO_STR},
	    {O_HEALTH_INTERVAL, "health_interval", FO_SECONDS},
	    {O_HEALTH_RETRIES, "health_retries", FO_UINT},
	    {O_NO_SNAPSHOT, "no_cache", FO_FLAG},
	};
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_VM_RUN, 0);
	bool detach = false, tty = false, in = false, bad = false;
	int c, r;
	const char *no_snap = getenv("FCVM_NO_SNAPSHOT");
	if (no_snap && *no_snap && strcmp(no_snap, "0") != 0)
		prec_set_bool(&req, &req.body, "no_cache", true);
	optind = 1;
	opterr = 0; /* the refused options get their reason; others getopt's message below */
	while (!bad && (c = getopt_long(argc, argv, "+e:dithp:w:u:l:", opts, NULL)) != -1) {
		if ((r = cli_field_opt(&req, fields, ARRAY_LEN(fields), c, optarg)) != 0) {
			bad = r < 0;
			continue;
		}
		switch (c) {
		case 'd':
			detach = true;
			break;
		case 'i':
			in = true;
			break;
		case 't':
			tty = true;
			break;
		case 'p':
			bad = cli_add_publish(&req, optarg) < 0;
			break;
		case O_LOG_OPT:
			bad |= log_opt(&req, optarg) < 0;
			break;
		case O_RESTART:
			if (strcmp(optarg, "no") != 0) {
				fprintf(
				    stderr,
				    "fcvm: --restart %s is not supported: the VM ends with its container (only 'no')\n",
				    optarg);
				bad = true;
			}
			break;
		case 'h':
			fputs(usage_text, stdout);
			pmsg_free(&req);
			return EXIT_OK;
		default: {
			const char *arg = argv[optind - 1];
			if (!(strncmp(arg, "--", 2) == 0 && refuse_option(arg)))
				fprintf(stderr, "fcvm: podman run: unknown or incomplete option '%s'\n%s", arg,
					usage_text);
			bad = true;
		}
		}
	}
	if (bad || optind >= argc) {
		if (!bad)
			fputs(usage_text, stderr);
		pmsg_free(&req);
		return EXIT_USAGE;
	}
	const char *image = argv[optind++];
	prec_set_str(&req, &req.body, "image", image);
	for (; optind < argc; optind++)
		prec_add_str(&req, &req.body, "argv", argv[optind]);
	prec_set_bool(&req, &req.body, "detach", detach);
	cli_set_stdio(&req, tty, in);

	int img AUTOCLOSE = open_image(image);
	if (img < 0) {
		pmsg_free(&req);
		return EXIT_FAIL;
	}
	int code = EXIT_OK;
	int fd AUTOCLOSE = cli_connect(o, &code);
	if (fd < 0) {
		pmsg_free(&req);
		return code;
	}
	req.id = 1;
	int rc = cli_send_with_fd(fd, &req, img);
	pmsg_free(&req);
	if (rc < 0) {
		fprintf(stderr, "fcvm: sending the request failed: %s\n", strerror(-rc));
		return EXIT_FAIL;
	}
	return cli_started(fd, OP_VM_RUN, detach, tty, in);
}
