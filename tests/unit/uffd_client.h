/* Firecracker's side of the UFFD handshake, byte for byte (its persist.rs): anonymous memory,
 * a userfaultfd with UFFD_FEATURE_EVENT_REMOVE, UFFDIO_API, every region registered MISSING,
 * connect, then one sendmsg with the JSON regions and the uffd by SCM_RIGHTS. Plus
 * fcvm-uffdd started as the launcher starts it. For tests/unit/sbx_uffdd.c and bench/uffd.c. */
#ifndef FCVM_UFFD_CLIENT_H
#define FCVM_UFFD_CLIENT_H

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/chan.h"

#define UC_PAGE 4096u

/* The memory file's byte at off (page p, offset o): a pattern no page repeats; pages with
 * p % 16 == 5 are holes (zeros). */
static inline unsigned char uc_byte(uint64_t off)
{
	uint64_t p = off / UC_PAGE;
	if (p % 16 == 5)
		return 0;
	return (unsigned char)(p * 131 + (off % UC_PAGE) * 7 + 1) | 1;
}

/* A memory file of pages pages at path (holes where uc_byte says). fd or -1. */
static inline int uc_make_file(const char *path, uint64_t pages)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	unsigned char *buf = malloc(UC_PAGE);
	if (fd < 0 || !buf || ftruncate(fd, (off_t)(pages * UC_PAGE)) < 0)
		goto fail;
	for (uint64_t p = 0; p < pages; p++) {
		if (p % 16 == 5)
			continue;
		for (unsigned i = 0; i < UC_PAGE; i++)
			buf[i] = uc_byte(p * UC_PAGE + i);
		if (pwrite(fd, buf, UC_PAGE, (off_t)(p * UC_PAGE)) != UC_PAGE)
			goto fail;
	}
	free(buf);
	return fd;
fail:
	free(buf);
	if (fd >= 0)
		close(fd);
	return -1;
}

/* A listening socket at path. */
static inline int uc_listen(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (strlen(path) >= sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, path, strlen(path) + 1);
	unlink(path);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 16) < 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

static inline int uc_connect(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (strlen(path) >= sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

/* Send data with nfds fds in one sendmsg (the handshake; forged ones too). */
static inline int uc_send(int s, const void *data, size_t len, const int *fds, int nfds)
{
	union {
		char b[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	memset(&ctl, 0, sizeof(ctl));
	if (nfds > 0) {
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
	}
	return sendmsg(s, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* A userfaultfd as Firecracker makes it (O_CLOEXEC|O_NONBLOCK, EVENT_REMOVE). Unprivileged
 * (vm.unprivileged_userfaultfd 0, no access to /dev/userfaultfd) only user-mode faults can be
 * handled, which is all a test's threads make. */
static inline int uc_userfaultfd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == EPERM)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return -1;
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE};
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct uc_vm {
	char *mem;
	uint64_t size; /* bytes, all of the file from offset 0 */
	int uffd, sock;
};

/* The guest's memory, nreg regions of equal size over a file of pages pages (each region
 * its own mapping, as Firecracker maps them); connect and hand over. 0 or -1. */
static inline int uc_vm_start(struct uc_vm *v, const char *sock_path, uint64_t pages, unsigned nreg)
{
	char json[4096];
	size_t n = 0;
	uint64_t per = pages / nreg * UC_PAGE;

	memset(v, 0, sizeof(*v));
	v->size = per * nreg;
	v->mem = mmap(NULL, v->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (v->mem == MAP_FAILED || (v->uffd = uc_userfaultfd()) < 0)
		return -1;
	n += (size_t)snprintf(json + n, sizeof(json) - n, "[");
	for (unsigned i = 0; i < nreg; i++) {
		struct uffdio_register reg = {.range = {.start = (uintptr_t)v->mem + i * per, .len = per},
					      .mode = UFFDIO_REGISTER_MODE_MISSING};
		if (ioctl(v->uffd, UFFDIO_REGISTER, &reg) < 0)
			return -1;
		n += (size_t)snprintf(json + n, sizeof(json) - n,
				      "%s{\"base_host_virt_addr\":%llu,\"size\":%llu,\"offset\":%llu,\"page_size\":%u,"
				      "\"page_size_kib\":%u}",
				      i ? "," : "", (unsigned long long)reg.range.start, (unsigned long long)per,
				      (unsigned long long)(i * per), UC_PAGE, UC_PAGE);
	}
	n += (size_t)snprintf(json + n, sizeof(json) - n, "]");
	if ((v->sock = uc_connect(sock_path)) < 0)
		return -1;
	return uc_send(v->sock, json, n, &v->uffd, 1);
}

/* Is page p of the guest right (the file's bytes, or zeros)? */
static inline bool uc_page_ok(const struct uc_vm *v, uint64_t p, bool zero)
{
	const volatile unsigned char *m = (const volatile unsigned char *)v->mem + p * UC_PAGE;
	for (unsigned i = 0; i < UC_PAGE; i++)
		if (m[i] != (zero ? 0 : uc_byte(p * UC_PAGE + i)))
			return false;
	return true;
}

static inline uint64_t uc_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* fcvm-uffdd as the launcher starts it: channel on fd 3, stderr to log (a file), rootless
 * mode (as root it still drops to no capabilities, under its own filter). */
struct uc_uffdd {
	pid_t pid;
	int chan;
};
static inline int uc_uffdd_start(struct uc_uffdd *u, const char *log)
{
	char path[256];
	int sv[2];
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	snprintf(path, sizeof(path), "%s/fcvm-uffdd", build);
	if (access(path, X_OK) != 0 || chan_pair(sv) < 0)
		return -1;
	int err = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (err < 0)
		return -1;
	u->pid = fork();
	if (u->pid == 0) {
		dup2(sv[1], 3);
		dup2(err, 2);
		execl(path, path, "--mode", "rootless", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	close(err);
	u->chan = sv[0];
	return u->pid > 0 ? 0 : -1;
}

/* A request and its reply (rep to be pmsg_freed); the reply's error code. */
static inline int uc_call(int chan, struct pmsg *req, struct pmsg *rep)
{
	struct perr e;
	memset(rep, 0, sizeof(*rep));
	if (chan_send_msg(chan, req, &e) < 0) {
		fprintf(stderr, "send: %s\n", e.msg);
		return -1;
	}
	if (chan_recv_msg(chan, rep, &e) != 1)
		return -1;
	return rep->err_code;
}

/* uffd_serve for vm: the socket and the memory file go over (the caller's copies stay its). */
static inline int uc_serve(int chan, const char *vm, const char *key, pid_t pid, int lsock, int memfd, struct pmsg *rep)
{
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_UFFD_SERVE, 1);
	prec_set_str(&req, &req.body, "vm", vm);
	prec_set_str(&req, &req.body, "key", key);
	prec_set_uint(&req, &req.body, "pid", (uint64_t)pid);
	pmsg_add_fd(&req, dup(lsock));
	pmsg_add_fd(&req, dup(memfd));
	int rc = uc_call(chan, &req, rep);
	pmsg_free(&req);
	return rc;
}

/* uffd_stats (op OP_UFFD_STATS) or uffd_stop for vm: the reply in rep. */
static inline int uc_vm_op(int chan, enum proto_op op, const char *vm, struct pmsg *rep)
{
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, op, 2);
	prec_set_str(&req, &req.body, "vm", vm);
	int rc = uc_call(chan, &req, rep);
	pmsg_free(&req);
	return rc;
}

static inline uint64_t uc_stat(int chan, const char *vm, const char *field)
{
	struct pmsg rep;
	uint64_t v = UINT64_MAX;
	if (uc_vm_op(chan, OP_UFFD_STATS, vm, &rep) == 0)
		prec_uint(&rep.body, field, &v);
	pmsg_free(&rep);
	return v;
}

/* vm's state ("serving" ...) into buf; "" when uffdd knows no such VM. */
static inline const char *uc_state(int chan, const char *vm, char *buf, size_t len)
{
	struct pmsg rep;
	buf[0] = '\0';
	if (uc_vm_op(chan, OP_UFFD_STATS, vm, &rep) == 0 && prec_str(&rep.body, "state"))
		snprintf(buf, len, "%s", prec_str(&rep.body, "state"));
	pmsg_free(&rep);
	return buf;
}

#endif
