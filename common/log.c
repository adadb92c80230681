#include <stdarg.h>
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
