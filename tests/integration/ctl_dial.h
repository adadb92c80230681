/* The control socket ($FCVM_SOCKET, as `fcvm supervise -- CMD` sets it) for the raw-frame test
 * programs, with send and receive timeouts of timeout_s: a test must not hang. */
#ifndef FCVM_CTL_DIAL_H
#define FCVM_CTL_DIAL_H

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static inline int ctl_dial(int timeout_s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *p = getenv("FCVM_SOCKET");
	if (!p || strlen(p) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, p);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	struct timeval tv = {timeout_s, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

#endif
