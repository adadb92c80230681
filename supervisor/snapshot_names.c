/* Snapshot tags are per user: A and B may both have `web`, and nothing tells B that A has
 * one. stored names a user's snapshot by its owner and tag, "uUID.TAG"; a user names and sees
 * only the tag. Root sees the others' by their full names (which say whose they are) and may
 * use those names; root's own are plain tags like anyone's. Startup-cache entries keep their
 * own names (CACHE_TAG_PREFIX..., each made for one owner). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/snapshot.h"

/* "uUID." at the start of s: its length, the uid in *uid; 0 if there is none. */
static size_t owner_prefix(const char *s, uid_t *uid)
{
	char *end;
	if (s[0] != 'u' || s[1] < '0' || s[1] > '9')
		return 0;
	errno = 0;
	unsigned long v = strtoul(s + 1, &end, 10);
	if (errno || *end != '.' || v > UINT32_MAX || end[1] == '\0')
		return 0;
	*uid = (uid_t)v;
	return (size_t)(end + 1 - s);
}

int snapshot_store_tag(uid_t caller, uid_t owner, const char *tag, char *out, size_t len, char *err, size_t elen)
{
	uid_t named;
	if (caller == 0 && owner_prefix(tag, &named)) {
		if (named != owner && owner != 0) {
			snprintf(err, elen, "'%s' names a snapshot of uid %u; this VM is uid %u's", tag,
				 (unsigned)named, (unsigned)owner);
			return -1;
		}
		snprintf(out, len, "%s", tag);
		return 0;
	}
	if (strlen(tag) > SNAP_USER_TAG_MAX) {
		snprintf(err, elen, "a snapshot tag is at most %d characters", SNAP_USER_TAG_MAX);
		return -1;
	}
	snprintf(out, len, "u%u.%s", (unsigned)owner, tag);
	return 0;
}

const char *snapshot_shown_tag(uid_t viewer, const char *store_tag)
{
	uid_t owner;
	size_t n = owner_prefix(store_tag, &owner);
	return n && owner == viewer ? store_tag + n : store_tag;
}
