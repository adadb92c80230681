/* Names and places fixed at build time. */
#ifndef FCVM_CONFIG_H
#define FCVM_CONFIG_H

#define FCVM_SUPERVISOR_USER "fcvm" /* system mode: the supervisor and the VMMs */
#define FCVM_HELPER_USER                                                                                               \
	"fcvm-priv" /* system mode: netd, stored, uffdd (own uid: the                                                  \
		       supervisor cannot signal-or-touch their files) */
#define FCVM_SYSTEM_STATE_DIR "/run/fcvm"
#define FCVM_SOCKET_NAME      "fcvm.sock"
#define FCVM_LOG_NAME	      "supervisor.log"
#define FCVM_ENV_SOCKET	      "FCVM_SOCKET"
#define FCVM_ENV_STATE_DIR    "FCVM_STATE_DIR"

#define FCVM_HELPER_CHANNEL_FD 3 /* a helper's channel to the supervisor */

#endif
