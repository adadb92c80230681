/* fcvm podman run [--name N] [--cpu N] [--mem MiB] [--env K=V]... [-d] [-i] [-t] [--rm]
 *                 [--network bridged|rootless|none] [-p|--publish [IP:]HOST:GUEST[/tcp|udp]]...
 *                 [--accel auto|kvm|tcg] IMAGE [CMD...]
 *
 * The image is opened here, as the user, and handed to the supervisor as an fd: the built-in
 * demo image, an OCI archive path, or an image in the user's podman storage (exported with
 * `podman save`). The supervisor never opens a path on a client's behalf. */
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
    "usage: fcvm podman run [--name NAME] [--cpu N] [--mem MiB] [--env KEY=VALUE]... [-d] [-i] [-t]\n"
    "                       [--rm] [--network bridged|rootless|none] [-p|--publish [IP:]HOST:GUEST[/tcp|udp]]...\n"
    "                       [--accel auto|kvm|tcg] IMAGE [CMD [ARG...]]\n"
    "  IMAGE: 'demo' (the built-in busybox image), an OCI archive file, or an image in your\n"
    "  podman storage (podman images).\n";

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

int cmd_podman(int argc, char **argv, struct cli_opts *o)
{
	if (argc < 2 || strcmp(argv[1], "run") != 0) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"cpu", required_argument, NULL, 'c'},
	    {"mem", required_argument, NULL, 'm'},
	    {"env", required_argument, NULL, 'e'},
	    {"detach", no_argument, NULL, 'd'},
	    {"interactive", no_argument, NULL, 'i'},
	    {"tty", no_argument, NULL, 't'},
	    {"rm", no_argument, NULL, 'r'},
	    {"network", required_argument, NULL, 'N'},
	    {"accel", required_argument, NULL, 'A'},
	    {"publish", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_VM_RUN, 0);
	bool detach = false, tty = false, in = false;
	uint64_t v;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+e:dithp:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			prec_set_str(&req, &req.body, "name", optarg);
			break;
		case 'c':
		case 'm':
			if (!parse_uint(optarg, 65536, &v)) {
				fprintf(stderr, "fcvm: --%s wants a number, not '%s'\n", c == 'c' ? "cpu" : "mem",
					optarg);
				pmsg_free(&req);
				return EXIT_USAGE;
			}
			prec_set_uint(&req, &req.body, c == 'c' ? "cpu" : "mem", v);
			break;
		case 'e':
			if (cli_add_env(&req, optarg) < 0) {
				pmsg_free(&req);
				return EXIT_USAGE;
			}
			break;
		case 'd':
			detach = true;
			break;
		case 'i':
			in = true;
			break;
		case 't':
			tty = true;
			break;
		case 'r':
			prec_set_bool(&req, &req.body, "remove", true);
			break;
		case 'N':
			prec_set_str(&req, &req.body, "network", optarg);
			break;
		case 'A':
			prec_set_str(&req, &req.body, "accel", optarg);
			break;
		case 'p':
			if (cli_add_publish(&req, optarg) < 0) {
				pmsg_free(&req);
				return EXIT_USAGE;
			}
			break;
		default:
			fputs(usage_text, c == 'h' ? stdout : stderr);
			pmsg_free(&req);
			return c == 'h' ? EXIT_OK : EXIT_USAGE;
		}
	}
	if (optind >= argc) {
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
