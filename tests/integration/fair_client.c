/* Run under `fcvm supervise -- fair_client`: one user's connections cannot lock out others or
 * grow the supervisor (tests/integration/fairness.sh). Prints PASS:/FAIL: lines.
 *   - a uid gets MAX_CLIENTS_PER_UID (64) connections; the next is closed at once, while a
 *     connection of another uid is still answered;
 *   - a frame left half-sent is closed after the partial-frame timeout;
 *   - a client that sends requests and never reads the replies stops being read (its writes
 *     block): the supervisor's RSS stays bounded, and others are served meanwhile;
 *   - a flood of refused requests leaves a bounded number of audit lines and a summary. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/stream.h"
#include "tests/integration/ctl_dial.h"

#define PER_UID 64

static int failures;

static void report(const char *name, int ok, const char *why)
{
	printf("%s: fair_client:%s%s%s%s\n", ok ? "PASS" : "FAIL", name, ok ? "" : " (", ok ? "" : why, ok ? "" : ")");
	fflush(stdout);
	failures += !ok;
}

static int dial(void)
{
	return ctl_dial(20);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A ping on fd: the reply's error code (PE_OK), -1 on transport failure; *pid the supervisor's. */
static int ping(int fd, uint64_t *pid)
{
	struct pmsg req, rep;
	struct perr e;
	pmsg_init(&req, PK_REQUEST, OP_PING, 1);
	int r = stream_send_msg(fd, &req, &e) < 0 ? -1 : stream_recv_msg(fd, &rep, &e);
	pmsg_free(&req);
	if (r != 1)
		return -1;
	int code = rep.err_code;
	if (pid)
		prec_uint(&rep.body, "pid", pid);
	pmsg_free(&rep);
	return code;
}

static int ping_new(void)
{
	int fd = dial();
	int code = fd < 0 ? -1 : ping(fd, NULL);
	if (fd >= 0)
		close(fd);
	return code;
}

/* true once the peer closed fd (read returns 0 or ECONNRESET) within the receive timeout */
static int closed_by_peer(int fd)
{
	char b;
	ssize_t n = read(fd, &b, 1);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static long rss_kib(uint64_t pid)
{
	char path[64], line[256];
	long kib = -1;
	snprintf(path, sizeof(path), "/proc/%llu/status", (unsigned long long)pid);
	FILE *f = fopen(path, "r");
	while (f && kib < 0 && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kib;
}

/* A connection of another uid (nobody) is answered: any reply counts, a refusal too. */
static int other_uid_answered(void)
{
	pid_t p = fork();
	if (p == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		int fd = dial();
		_exit(fd >= 0 && ping(fd, NULL) >= 0 ? 0 : 1);
	}
	int st;
	return p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void connection_limit(void)
{
	int fds[PER_UID];
	int held = 0;
	for (int i = 0; i < PER_UID - 2; i++) /* main's connection, these, and the probe: 64 */
		if ((fds[held] = dial()) >= 0)
			held++;
	int probe = dial(); /* the 64th */
	report("per_uid_connections_served", held == PER_UID - 2 && probe >= 0 && ping(probe, NULL) == PE_OK,
	       "not all of a uid's first 64 connections were answered");
	int over = dial();
	report("connection_past_the_per_uid_limit_closed", over >= 0 && closed_by_peer(over),
	       "the 65th connection stayed open");
	if (over >= 0)
		close(over);
	if (getuid() == 0)
		report("other_uid_served_meanwhile", other_uid_answered(), "the other uid got no answer");
	close(probe);
	for (int i = 0; i < held; i++)
		close(fds[i]);
	/* the closes are seen by the supervisor asynchronously: poll, bounded */
	int ok = 0;
	for (double end = now_s() + 10; !ok && now_s() < end;)
		ok = ping_new() == PE_OK;
	report("connections_free_again_once_closed", ok, "no connection after closing them");
}

static void partial_frame(void)
{
	int fd = dial();
	const unsigned char half[3] = {0, 0, 0};
	double t0 = now_s();
	int ok = fd >= 0 && write(fd, half, sizeof(half)) == sizeof(half) && closed_by_peer(fd);
	char why[80];
	snprintf(why, sizeof(why), "not closed in %.1f s", now_s() - t0);
	report("half_sent_frame_closed", ok, why);
	if (fd >= 0)
		close(fd);
}

static void non_reader(void)
{
	uint64_t pid = 0;
	int fd = dial();
	if (fd < 0 || ping(fd, &pid) != PE_OK || !pid) {
		report("non_reading_client", 0, "no supervisor pid");
		return;
	}
	long before = rss_kib(pid);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	unsigned char frame[STREAM_HDR + 64];
	size_t len;
	struct pmsg req;
	struct perr e;
	pmsg_init(&req, PK_REQUEST, OP_PING, 7);
	int rc = stream_encode(&req, frame, sizeof(frame), &len, &e);
	pmsg_free(&req);
	size_t sent = 0;
	/* write until the supervisor stops reading (writes block for 2 s), at most 200 MB */
	double idle_since = 0;
	while (rc == 0 && sent < (200u << 20)) {
		ssize_t n = write(fd, frame, len);
		if (n > 0) {
			sent += (size_t)n;
			idle_since = 0;
			continue;
		}
		if (n < 0 && errno != EAGAIN)
			break;
		if (!idle_since)
			idle_since = now_s();
		else if (now_s() - idle_since > 2)
			break;
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		poll(&p, 1, 100);
	}
	long after = rss_kib(pid);
	char why[160];
	snprintf(why, sizeof(why), "%zu bytes of requests sent; RSS %ld -> %ld KiB", sent, before, after);
	report("non_reading_client_is_not_read", sent < (200u << 20), why);
	report("non_reading_client_leaves_rss_bounded", before > 0 && after > 0 && after - before < 16 * 1024, why);
	report("others_served_while_one_does_not_read", ping_new() == PE_OK, "a ping got no answer");
	printf("INFO: fair_client: %s\n", why);
	close(fd);
}

static void refusal_flood(void)
{
	int fd = dial();
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_SPAWN, 3); /* not a client operation: refused, audited */
	prec_set_str(&req, &req.body, "helper", "netd");
	int refused = 0;
	for (int i = 0; fd >= 0 && i < 5000; i++) {
		struct pmsg rep;
		struct perr e;
		if (stream_send_msg(fd, &req, &e) < 0 || stream_recv_msg(fd, &rep, &e) != 1)
			break;
		refused += rep.err_code != PE_OK;
		pmsg_free(&rep);
	}
	pmsg_free(&req);
	report("refusal_flood_refused", refused == 5000, "not every request was refused");
	if (fd >= 0)
		close(fd);
}

/* The refusals past the burst are summarised once the window has passed, with the next one. */
static int log_has(const char *what)
{
	char path[4200], line[1200];
	const char *dir = getenv("FCVM_STATE_DIR");
	int found = 0;
	snprintf(path, sizeof(path), "%s/supervisor.log", dir ? dir : ".");
	FILE *f = fopen(path, "r");
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	if (f)
		fclose(f);
	return found;
}

static void refusal_summary(void)
{
	int fd = dial();
	struct pmsg req;
	pmsg_init(&req, PK_REQUEST, OP_SPAWN, 4);
	prec_set_str(&req, &req.body, "helper", "netd");
	int found = 0;
	for (double end = now_s() + 20; fd >= 0 && !found && now_s() < end;) {
		struct pmsg rep;
		struct perr e;
		if (stream_send_msg(fd, &req, &e) < 0 || stream_recv_msg(fd, &rep, &e) != 1)
			break;
		pmsg_free(&rep);
		found = log_has("more from uid");
		if (!found)
			poll(NULL, 0, 500);
	}
	pmsg_free(&req);
	report("refusals_past_the_burst_summarised", found, "no summary line in the log");
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	int keep = dial(); /* this test's first connection, held throughout */
	if (!only || !strcmp(only, "flood"))
		refusal_flood();
	if (!only || !strcmp(only, "limit"))
		connection_limit();
	if (!only || !strcmp(only, "partial"))
		partial_frame();
	if (!only || !strcmp(only, "reader"))
		non_reader();
	if (!only || !strcmp(only, "flood"))
		refusal_summary();
	if (keep >= 0)
		close(keep);
	return failures ? 1 : 0;
}
