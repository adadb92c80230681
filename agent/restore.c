/* agent_restore: the first request a clone's agent gets. The guest's memory is its
 * snapshot's, so it believes it is that VM at that instant: its wall clock stopped when the
 * snapshot was taken, its random pool is every other clone's too, its hostname and the MAC of
 * its gateway (a tap made for this clone) are the old ones. All of that is put right here,
 * before the host lets anything else reach the guest. */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/util.h"

extern char **environ;

/* The host's bytes into the pool, credited, then the CRNG reseeded from it: what
 * getrandom() gives from now on differs from every other clone's. */
static int reseed(const void *bytes, size_t n)
{
	struct {
		int entropy_count;
		int buf_size;
		unsigned char buf[256];
	} info;
	if (n > sizeof(info.buf))
		return -EINVAL;
	info.entropy_count = (int)(n * 8);
	info.buf_size = (int)n;
	memcpy(info.buf, bytes, n);
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = ioctl(fd, RNDADDENTROPY, &info) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* `ip neigh flush all`: the gateway's old MAC would send every packet to a tap that is gone. */
static void flush_neighbours(void)
{
	char *const argv[] = {"ip", "neigh", "flush", "all", NULL};
	pid_t pid;
	int st;
	if (posix_spawnp(&pid, "ip", NULL, NULL, argv, environ) != 0) {
		aerr("restore: ip neigh flush: %s", strerror(errno));
		return;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

void do_restore(const struct pmsg *req)
{
	const struct precord *b = &req->body;
	uint64_t ns = 0, epoch = 0;
	size_t n = 0;
	const void *entropy = prec_bin(b, "entropy", &n);
	const char *host = prec_str(b, "hostname");
	struct pmsg r;

	prec_uint(b, "epoch", &epoch);
	prec_uint(b, "time_ns", &ns);
	uint64_t before = now_realtime_ns();
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
	int rc = clock_settime(CLOCK_REALTIME, &ts) < 0 ? -errno : 0;
	if (rc == 0)
		rc = reseed(entropy, n);
	if (rc == 0 && host && sethostname(host, strlen(host)) < 0) /* absent: the guest's own stays */
		rc = -errno;
	if (rc < 0) {
		aerr("restore %llu: %s", (unsigned long long)epoch, strerror(-rc));
		pmsg_refuse(&r, req, PE_INTERNAL, "the clone's identity could not be set: %s", strerror(-rc));
		host_send(&r);
		pmsg_free(&r);
		return;
	}
	if (ag.net_on)
		flush_neighbours();
	bool release = false;
	if (prec_bool(b, "release", &release) && release)
		hold_release("a clone, its identity set");
	alog("restored (epoch %llu) as %s; the clock was %llu ms behind", (unsigned long long)epoch,
	     host ? host : "itself", (unsigned long long)((ns > before ? ns - before : 0) / 1000000));
	pmsg_init_reply(&r, req);
	prec_set_uint(&r, &r.body, "uptime_ms", boottime_ms());
	prec_set_uint(&r, &r.body, "clock_step_ms", (ns > before ? ns - before : 0) / 1000000);
	host_send(&r);
	pmsg_free(&r);
}
