/* Where an instance's control socket may live, and whom to trust at its other end.
 *
 * A socket is only as trustworthy as its directory: whoever can write that directory (or
 * rename it, through a parent they can write) can put their own listener in its place and
 * receive the caller's requests and the files handed over with them. So a client trusts a
 * socket only when its directory and every directory above it are out of other users'
 * reach, and, once connected, only when SO_PEERCRED names the caller, root or the system
 * supervisor's user. Used by the CLI and the launcher; no dependency on cli/. */
#ifndef FCVM_PATHS_H
#define FCVM_PATHS_H

#include <stddef.h>
#include <sys/types.h>

#define PATHS_NO_UID ((uid_t)-1)

/* The state directory of the caller's own instance when none is named:
 *   root: FCVM_SYSTEM_STATE_DIR (/run/fcvm);
 *   else $XDG_RUNTIME_DIR/fcvm when XDG_RUNTIME_DIR is absolute and private (see below);
 *   else HOME/.local/state/fcvm/run, HOME being $HOME when it is the caller's own private
 *   directory, else the home in the password database under the same condition.
 * Never a world-writable directory such as /tmp: another user could create it first.
 * The result has no symbolic link in it and leaves room for the socket's name in sun_path.
 * Returns a static buffer, or NULL when there is no safe place (paths_default_state_dir_why()
 * then says why; after a success it says what was passed over, or is ""). */
const char *paths_default_state_dir(void);
const char *paths_default_state_dir_why(void);

/* 0 if dir is a directory (lstat: not a symbolic link) owned by uid or root, writable by no
 * group or other; else -errno (-ENOENT, -ENOTDIR, -ELOOP, -EPERM, ...) and a plain-English
 * reason in why ("/tmp/fcvm-1000 is owned by uid 1001, not you"). */
int paths_check_private_dir(const char *dir, uid_t uid, char *why, size_t whylen);

/* 0 if no one but uid and root can rename dir away or replace it: every directory above it
 * (symbolic links resolved) is owned by uid or root and writable by no one else unless it is
 * sticky (as /tmp is: then others cannot rename what they do not own). -errno and why if not. */
int paths_check_parents(const char *dir, uid_t uid, char *why, size_t whylen);

/* Both checks on dir, then the path of dir/name to connect to, with dir's symbolic links
 * resolved (so none can be swapped between the check and the connect). -ENAMETOOLONG when
 * it does not fit in sun_path. 0 or -errno and why. */
int paths_trusted_socket(const char *dir, const char *name, uid_t uid, char *sock, size_t socklen, char *why,
			 size_t whylen);

/* The uid of FCVM_SUPERVISOR_USER (the system instance's supervisor), or PATHS_NO_UID. */
uid_t paths_system_uid(void);

/* 0 if the peer of the connected unix socket fd (SO_PEERCRED: whoever listens on it) is self,
 * root or system_uid (PATHS_NO_UID: none); else -EPERM (or -errno) and why. */
int paths_check_socket_peer(int fd, uid_t self, uid_t system_uid, char *why, size_t whylen);

#endif
