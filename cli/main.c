/* fcvm: run Podman containers in microVMs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/config.h"

static void usage(FILE *f)
{
	fputs("usage: fcvm [--state-dir DIR] COMMAND [ARGS...]\n"
	      "\n"
	      "commands:\n"
	      "  podman run [OPTS] IMAGE [CMD...]  run a container in a new microVM (IMAGE 'demo': built in)\n"
	      "  exec NAME [-i] [-t] [--vm] -- CMD  run a command in a VM's container (or the VM)\n"
	      "  ls [--json]             VMs: name, id, status, health, image, owner, created\n"
	      "  stop NAME | rm NAME     stop a VM | remove a stopped VM and its disk\n"
	      "  logs NAME [-f]          the container's output\n"
	      "  snapshot create VM --tag TAG | run TAG [OPTS] | ls | rm TAG\n"
	      "                          keep a running VM as TAG; clones of it that share its memory\n"
	      "  supervise [-- CMD...]   run a supervisor and its helpers (with CMD: for CMD's lifetime)\n"
	      "  status [--json]         the supervisor and helpers: pid, uid, capabilities, seccomp, uptime\n"
	      "  ping [HELPER]           round trip to the supervisor or through it to a helper\n"
	      "  disk create|clone|rm|ls VM disks in the data directory (through stored)\n"
	      "  image import|ls|rm      base images for disks (read-only, through stored)\n"
	      "  setup [--check]         build the guest assets (kernel, initramfs, rootfs, demo image)\n"
	      "  setup --btrfs-loop SIZE a loop-backed btrfs for the data directory (root)\n"
	      "  shutdown                stop the instance (its owner only)\n"
	      "  version                 print the version\n"
	      "\n"
	      "The instance is chosen by --state-dir DIR or FCVM_STATE_DIR, else FCVM_SOCKET, else the\n"
	      "system instance (" FCVM_SYSTEM_STATE_DIR "), else your own, started on demand.\n",
	      f);
}

int main(int argc, char **argv)
{
	struct cli_opts o = {.state_dir = getenv(FCVM_ENV_STATE_DIR)};
	int i = 1;
	if (o.state_dir && !*o.state_dir)
		o.state_dir = NULL;
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--state-dir") == 0 && i + 1 < argc) {
			o.state_dir = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--state-dir=", 12) == 0) {
			o.state_dir = argv[i] + 12;
			i++;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return EXIT_OK;
		} else {
			fprintf(stderr, "fcvm: unknown option %s\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[i];
	int sub_argc = argc - i;
	char **sub_argv = argv + i;
	if (strcmp(cmd, "supervise") == 0)
		return cmd_supervise(sub_argc, sub_argv, o.state_dir);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(sub_argc, sub_argv, &o);
	if (strcmp(cmd, "ping") == 0)
		return cmd_ping(sub_argc, sub_argv, &o);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
		return cmd_version(sub_argc, sub_argv, &o);
	if (strcmp(cmd, "setup") == 0)
		return cmd_setup(sub_argc, sub_argv, &o);
	if (strcmp(cmd, "disk") == 0)
		return cmd_disk(sub_argc, sub_argv, &o);
	if (strcmp(cmd, "podman") == 0)
		return cmd_podman(sub_argc, sub_argv, &o);
	if (strcmp(cmd, "exec") == 0)
		return cmd_exec(sub_argc, sub_argv, &o);
	if (strcmp(cmd, "ls") == 0 || strcmp(cmd, "ps") == 0)
		return cmd_ls(sub_argc, sub_argv, &o);
	if (strcmp(cmd, "stop") == 0)
		return cmd_stop(sub_argc, sub_argv, &o);
	if (strcmp(cmd, "rm") == 0)
		return cmd_rm(sub_argc, sub_argv, &o);
	if (strcmp(cmd, "image") == 0)
		return cmd_image(sub_argc, sub_argv, &o);
	if (strcmp(cmd, "logs") == 0)
		return cmd_logs(sub_argc, sub_argv, &o);
	if (strcmp(cmd, "snapshot") == 0)
		return cmd_snapshot(sub_argc, sub_argv, &o);
	if (strcmp(cmd, "shutdown") == 0)
		return cmd_shutdown(sub_argc, sub_argv, &o);
	fprintf(stderr, "fcvm: unknown command '%s' (try 'fcvm --help')\n", cmd);
	return EXIT_USAGE;
}
