/* The real helper programs (build/fcvm-*) on a channel of their own, as the launcher starts
 * them: they answer ping with their identity, refuse what they do not serve, refuse bad
 * fields, and close the channel — only that one — on a malformed frame. */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "proto/chan.h"
#include "tests/unit/check.h"

struct helper_proc {
	pid_t pid;
	int chan;
	int err;       /* read end of its stderr */
	char data[64]; /* its data directory (stored's), removed by stop_helper */
};

static int start_helper(const char *name, struct helper_proc *h)
{
	char path[256];
	int sv[2], errp[2];
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	snprintf(path, sizeof(path), "%s/fcvm-%s", build, name);
	if (access(path, X_OK) != 0 || chan_pair(sv) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		return -1;
	/* stored needs a data directory on fd 4, as the launcher gives it */
	char data[] = "/tmp/fcvm-sbx-data.XXXXXX";
	if (!mkdtemp(data))
		return -1;
	int datafd = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	h->pid = fork();
	if (h->pid == 0) {
		dup2(sv[1], 3);
		dup2(datafd, 4);
		dup2(errp[1], 2);
		/* rootless mode: no uid change; as root it still drops to its own caps */
		execl(path, path, "--mode", "rootless", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	close(errp[1]);
	close(datafd);
	snprintf(h->data, sizeof(h->data), "%s", data);
	h->chan = sv[0];
	h->err = errp[0];
	return 0;
}

static int stop_helper(struct helper_proc *h)
{
	int st;
	char cmd[96];
	close(h->chan);
	waitpid(h->pid, &st, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", h->data);
	(void)!system(cmd);
	return st;
}

static int roundtrip(struct helper_proc *h, struct pmsg *req, struct pmsg *rep)
{
	struct perr e;
	CHECK(chan_send_msg(h->chan, req, &e) == 0);
	int r = chan_recv_msg(h->chan, rep, &e);
	CHECK_EQ(r, 1);
	CHECK_EQ(e.code, PE_OK);
	return rep->err_code;
}

static void read_all(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t r;
	while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
}

TEST(each_helper_answers_ping)
{
	const char *names[] = {"netd", "stored", "uffdd"};
	for (size_t i = 0; i < 3; i++) {
		struct helper_proc h;
		if (start_helper(names[i], &h) < 0)
			SKIP("helper binaries not built");
		struct pmsg req, rep;
		pmsg_init(&req, PK_REQUEST, OP_PING, 5);
		CHECK_EQ(roundtrip(&h, &req, &rep), PE_OK);
		CHECK_EQ(rep.id, 5);
		CHECK_STR(prec_str(&rep.body, "name"), names[i]);
		uint64_t secc = 0, pid = 0;
		CHECK(prec_uint(&rep.body, "seccomp", &secc) && secc == 2);
		CHECK(prec_uint(&rep.body, "pid", &pid) && (pid_t)pid == h.pid);
		pmsg_free(&req);
		pmsg_free(&rep);
		int st = stop_helper(&h);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* EOF: orderly exit */
	}
}

TEST(unserved_op_refused_and_audited)
{
	struct helper_proc h;
	if (start_helper("uffdd", &h) < 0)
		SKIP("helper binaries not built");
	struct pmsg req, rep;
	pmsg_init(&req, PK_REQUEST, OP_STATUS, 6);
	CHECK_EQ(roundtrip(&h, &req, &rep), PE_NOT_IMPLEMENTED);
	pmsg_free(&rep);
	pmsg_free(&req);
	/* still serving */
	pmsg_init(&req, PK_REQUEST, OP_PING, 7);
	CHECK_EQ(roundtrip(&h, &req, &rep), PE_OK);
	pmsg_free(&rep);
	pmsg_free(&req);
	stop_helper(&h);
	char log[4096];
	read_all(h.err, log, sizeof(log));
	CHECK(strstr(log, "audit: refused 'status'") != NULL);
}

TEST(malformed_frame_closes_only_that_channel)
{
	struct helper_proc a, b;
	if (start_helper("netd", &a) < 0 || start_helper("stored", &b) < 0)
		SKIP("helper binaries not built");
	static const unsigned char junk[] = {0x96, 0xc1, 0xc1};
	CHECK(chan_send(a.chan, junk, sizeof(junk), NULL, 0) == 0);
	char c;
	CHECK_EQ(read(a.chan, &c, 1), 0); /* netd closed its channel */
	int st;
	CHECK(waitpid(a.pid, &st, 0) == a.pid);
	char rm[96];
	snprintf(rm, sizeof(rm), "rm -rf %s", a.data);
	(void)!system(rm);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0);
	char log[4096];
	read_all(a.err, log, sizeof(log));
	CHECK(strstr(log, "audit: malformed frame") != NULL);
	/* stored, on its own channel, is unaffected */
	struct pmsg req, rep;
	pmsg_init(&req, PK_REQUEST, OP_PING, 8);
	CHECK_EQ(roundtrip(&b, &req, &rep), PE_OK);
	pmsg_free(&rep);
	pmsg_free(&req);
	stop_helper(&b);
}

TEST(invalid_field_refused)
{
	struct helper_proc h;
	if (start_helper("netd", &h) < 0)
		SKIP("helper binaries not built");
	/* [1, 0, "ping", 9, {"helper": "a/b"}, nil]: a path where an identifier belongs */
	static const unsigned char frame[] = {0x96, 0x01, 0x00, 0xa4, 'p', 'i', 'n',  'g', 0x09, 0x81, 0xa6,
					      'h',  'e',  'l',	'p',  'e', 'r', 0xa3, 'a', '/',	 'b',  0xc0};
	CHECK(chan_send(h.chan, frame, sizeof(frame), NULL, 0) == 0);
	struct pmsg rep;
	struct perr e;
	CHECK_EQ(chan_recv_msg(h.chan, &rep, &e), 1);
	CHECK_EQ(rep.err_code, PE_INVALID);
	CHECK_EQ(rep.id, 9);
	pmsg_free(&rep);
	stop_helper(&h);
}

TEST(unexpected_fd_refused)
{
	struct helper_proc h;
	if (start_helper("netd", &h) < 0)
		SKIP("helper binaries not built");
	/* ping declares no fds: one sent beside it is closed by the helper and refused */
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_PING, 11);
	unsigned char buf[256];
	size_t len;
	struct perr e;
	CHECK_EQ(pmsg_encode(&req, buf, sizeof(buf), &len, &e), PE_OK);
	/* chan_send_msg would refuse to send it: a hostile peer uses the raw channel */
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK(chan_send(h.chan, buf, len, &fd, 1) == 0);
	close(fd);
	struct pmsg rep;
	CHECK_EQ(chan_recv_msg(h.chan, &rep, &e), 1);
	CHECK_EQ(rep.err_code, PE_INVALID);
	pmsg_free(&rep);
	pmsg_free(&req);
	stop_helper(&h);
}
