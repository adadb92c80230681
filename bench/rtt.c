/* Round trip client -> supervisor -> helper -> back (a ping forwarded to netd), against a
 * raw socketpair echo of the same frame measured in the same run. Run under
 * `fcvm supervise -- build/bench/rtt [N]` (bench/run does). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "proto/chan.h"
#include "proto/stream.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct stats {
	double p50_us, p99_us, rps;
};

static struct stats summarise(uint64_t *ns, size_t n, uint64_t total_ns)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	size_t p50 = n / 2, p99 = n * 99 / 100;
	struct stats s = {
	    .p50_us = (double)ns[p50] / 1e3,
	    .p99_us = (double)ns[p99] / 1e3,
	    .rps = (double)n / ((double)total_ns / 1e9),
	};
	return s;
}

/* Baseline: the same encoded request frame echoed by another process over a socketpair. */
static struct stats raw_echo(size_t n, const void *frame, size_t len)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		char buf[PROTO_MAX_FRAME];
		ssize_t r;
		close(sv[0]);
		while ((r = read(sv[1], buf, sizeof(buf))) > 0)
			if (write(sv[1], buf, (size_t)r) != r)
				break;
		_exit(0);
	}
	close(sv[1]);
	uint64_t *lat = calloc(n, sizeof(*lat));
	char buf[PROTO_MAX_FRAME];
	uint64_t t0 = now_mono_ns();
	for (size_t i = 0; i < n; i++) {
		uint64_t a = now_mono_ns();
		if (write(sv[0], frame, len) != (ssize_t)len || read(sv[0], buf, sizeof(buf)) <= 0)
			exit(1);
		lat[i] = now_mono_ns() - a;
	}
	struct stats s = summarise(lat, n, now_mono_ns() - t0);
	close(sv[0]);
	waitpid(pid, NULL, 0);
	free(lat);
	return s;
}

static int dial(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *p = getenv("FCVM_SOCKET");
	if (!p || strlen(p) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "rtt: run under 'fcvm supervise -- rtt'\n");
		exit(2);
	}
	strcpy(sa.sun_path, p);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("rtt: connect");
		exit(1);
	}
	return fd;
}

static struct stats via_supervisor(size_t n, const char *helper)
{
	int fd = dial();
	uint64_t *lat = calloc(n, sizeof(*lat));
	struct pmsg req, rep;
	struct perr e;
	pmsg_init(&req, PK_REQUEST, OP_PING, 1);
	if (helper)
		prec_set_str(&req, &req.body, "helper", helper);
	uint64_t t0 = now_mono_ns();
	for (size_t i = 0; i < n; i++) {
		uint64_t a = now_mono_ns();
		req.id = (uint32_t)i + 1;
		if (stream_send_msg(fd, &req, &e) < 0 || stream_recv_msg(fd, &rep, &e) != 1 || rep.err_code != PE_OK) {
			fprintf(stderr, "rtt: request %zu failed\n", i);
			exit(1);
		}
		pmsg_free(&rep);
		lat[i] = now_mono_ns() - a;
	}
	struct stats s = summarise(lat, n, now_mono_ns() - t0);
	pmsg_free(&req);
	free(lat);
	close(fd);
	return s;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
	if (n < 100)
		n = 100;
	/* the frame the client sends, for a like-for-like baseline */
	struct pmsg req;
	unsigned char frame[256];
	size_t len;
	struct perr e;
	pmsg_init(&req, PK_REQUEST, OP_PING, 1);
	prec_set_str(&req, &req.body, "helper", "netd");
	pmsg_encode(&req, frame, sizeof(frame), &len, &e);
	pmsg_free(&req);

	via_supervisor(n / 10, "netd"); /* warm up */
	struct stats raw = raw_echo(n, frame, len);
	struct stats sup = via_supervisor(n, NULL);
	struct stats hlp = via_supervisor(n, "netd");
	printf("round trips: %zu each\n", n);
	printf("%-36s %9s %9s %12s %9s\n", "path", "p50 us", "p99 us", "req/s", "p50 x raw");
	printf("%-36s %9.1f %9.1f %12.0f %9.2f\n", "raw socketpair echo (baseline)", raw.p50_us, raw.p99_us, raw.rps,
	       1.0);
	printf("%-36s %9.1f %9.1f %12.0f %9.2f\n", "client -> supervisor", sup.p50_us, sup.p99_us, sup.rps,
	       sup.p50_us / raw.p50_us);
	printf("%-36s %9.1f %9.1f %12.0f %9.2f\n", "client -> supervisor -> netd", hlp.p50_us, hlp.p99_us, hlp.rps,
	       hlp.p50_us / raw.p50_us);
	return 0;
}
