#ifndef FCVM_UTIL_H
#define FCVM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

uint64_t now_realtime_ms(void);
uint64_t now_realtime_ns(void);
uint64_t now_mono_ms(void);
uint64_t now_mono_ns(void);

/* Close an fd and set it to -1; for __attribute__((cleanup)) too. */
void close_fdp(int *fd);
#define AUTOCLOSE __attribute__((cleanup(close_fdp)))

/* Parse a decimal unsigned; false on junk or overflow beyond max. */
bool parse_uint(const char *s, uint64_t max, uint64_t *out);

/* Look a user up by name (before any sandbox: NSS opens files). Returns 0 or -ENOENT. */
int lookup_user(const char *name, uid_t *uid, gid_t *gid);
/* The same for a group. */
int lookup_group(const char *name, gid_t *gid);

/* mkdir -p with a mode for the directories it creates. Returns 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

#endif
