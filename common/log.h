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

#endif
