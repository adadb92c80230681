/* What the direct (no supervisor, no sandbox) baselines share: UNIX listeners and
 * connections, the agent's sync marker. Static: each bench program is one file. */
#ifndef FCVM_BENCH_DIRECT_H
#define FCVM_BENCH_DIRECT_H

#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/stream.h"

static int listener(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
		return -1;
	return fd;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	return fd;
}

/* Read byte by byte up to the agent's sync marker. */
static int skip_to_marker(int fd)
{
	size_t got = 0;
	unsigned char c;
	while (got < AGENT_SYNC_MARKER_LEN) {
		if (read(fd, &c, 1) != 1)
			return -1;
		got = c == (unsigned char)AGENT_SYNC_MARKER[got] ? got + 1 : (c == 0 ? 1 : 0);
	}
	return 0;
}

/* QEMU with ARGV (argv[0] the program), FDS[i] at VMM_FD(i), stdout and stderr to CONSOLE. */
static pid_t spawn_qemu(char **argv, const int *fds, int n, int console)
{
	pid_t pid = fork();
	if (pid == 0) {
		int high[32], con = fcntl(console, F_DUPFD, 64);
		for (int i = 0; i < n && i < 32; i++)
			high[i] = fcntl(fds[i], F_DUPFD, 64);
		for (int i = 0; i < n && i < 32; i++)
			dup2(high[i], 3 + i);
		dup2(con, 1);
		dup2(con, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

#endif
