/* One-line logs on stderr: "name[pid]: level: message". The launcher points stderr of every
 * fcvm process at the instance's log file. */
#ifndef FCVM_LOG_H
#define FCVM_LOG_H

void log_init(const char *name);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A refused request: always logged, with a fixed "audit:" prefix that tests and admins grep. */
void log_audit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same from a source that may repeat it at will (a uid's refusals): at most
 * LOG_BURST lines per source each LOG_WINDOW_S seconds, then one line saying how many more
 * there were ("1204331 more from uid 1002 in the last 10 s"), when the next one comes. */
#define LOG_BURST    20
#define LOG_WINDOW_S 10
void log_audit_limited(unsigned uid, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same from any source, named ("VM web": a guest's garbage). */
void log_audit_limited_src(const char *source, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
