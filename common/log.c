#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static char log_name[32] = "fcvm";

void log_init(const char *name)
{
	snprintf(log_name, sizeof(log_name), "%s", name);
}

/* One write(2) per line so lines from several processes sharing the file do not interleave. */
__attribute__((format(printf, 2, 0))) static void log_line(const char *level, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* UTC time of day by hand: gmtime_r would open /etc/localtime, which sandboxed
	 * processes cannot (and need not) do. */
	long day = (long)(ts.tv_sec % 86400);
	int n = snprintf(line, sizeof(line), "%02ld:%02ld:%02ld.%03ld %s[%d]: %s: ", day / 3600, day / 60 % 60,
			 day % 60, ts.tv_nsec / 1000000, log_name, (int)getpid(), level);
	if (n < 0)
		return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

#define LOG_FN(fn, level)                                                                                              \
	void fn(const char *fmt, ...)                                                                                  \
	{                                                                                                              \
		va_list ap;                                                                                            \
		va_start(ap, fmt);                                                                                     \
		log_line(level, fmt, ap);                                                                              \
		va_end(ap);                                                                                            \
	}

LOG_FN(log_info, "info")
LOG_FN(log_warn, "warning")
LOG_FN(log_err, "error")
LOG_FN(log_audit, "audit")

/* Sources seen lately, each with its window; the least recently used slot is reused. */
#define LIMIT_SOURCES	 64
#define LIMIT_SOURCE_MAX 48
static struct {
	char source[LIMIT_SOURCE_MAX]; /* "uid 1002", "VM web" */
	bool used;
	time_t window; /* start of the current window (CLOCK_MONOTONIC, s) */
	unsigned lines, dropped;
	time_t last;
} limits[LIMIT_SOURCES];

static void audit_limited(const char *source, const char *fmt, va_list ap)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	size_t slot = 0;
	for (size_t i = 0; i < LIMIT_SOURCES; i++) {
		if (limits[i].used && strncmp(limits[i].source, source, LIMIT_SOURCE_MAX - 1) == 0) {
			slot = i;
			goto found;
		}
		if (!limits[i].used || limits[i].last < limits[slot].last)
			slot = i;
	}
	if (limits[slot].used && limits[slot].dropped)
		log_audit("%u more from %s in its last window", limits[slot].dropped, limits[slot].source);
	limits[slot].used = true;
	snprintf(limits[slot].source, LIMIT_SOURCE_MAX, "%s", source);
	limits[slot].window = ts.tv_sec;
	limits[slot].lines = limits[slot].dropped = 0;
found:
	limits[slot].last = ts.tv_sec;
	if (ts.tv_sec - limits[slot].window >= LOG_WINDOW_S) {
		if (limits[slot].dropped)
			log_audit("%u more from %s in the last %d s", limits[slot].dropped, limits[slot].source,
				  LOG_WINDOW_S);
		limits[slot].window = ts.tv_sec;
		limits[slot].lines = limits[slot].dropped = 0;
	}
	if (limits[slot].lines >= LOG_BURST) {
		limits[slot].dropped++;
		return;
	}
	limits[slot].lines++;
	log_line("audit", fmt, ap);
}

void log_audit_limited(unsigned uid, const char *fmt, ...)
{
	char source[32];
	snprintf(source, sizeof(source), "uid %u", uid);
	va_list ap;
	va_start(ap, fmt);
	audit_limited(source, fmt, ap);
	va_end(ap);
}

void log_audit_limited_src(const char *source, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	audit_limited(source, fmt, ap);
	va_end(ap);
}
