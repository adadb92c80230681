/* Names and places fixed at build time. */
#ifndef FCVM_CONFIG_H
#define FCVM_CONFIG_H

/* System mode: the supervisor (and later the VMMs) run as FCVM_SUPERVISOR_USER; netd, stored
 * and uffdd as FCVM_HELPER_USER, so the supervisor can neither signal the helpers nor touch
 * their files. */
#define FCVM_SUPERVISOR_USER "fcvm"
#define FCVM_HELPER_USER     "fcvm-priv"
#define FCVM_VMM_USER	     "fcvm-vmm" /* QEMU: can signal neither the supervisor nor the helpers */

#define FCVM_SYSTEM_STATE_DIR "/run/fcvm"
#define FCVM_SYSTEM_DATA_DIR  "/var/lib/fcvm"
#define FCVM_DATA_DIR_NAME    "data" /* a private instance's data dir: STATE_DIR/data */
#define FCVM_SOCKET_NAME      "fcvm.sock"
#define FCVM_LOG_NAME	      "supervisor.log"
#define FCVM_VMS_DIR_NAME     "vms" /* STATE_DIR/vms/NAME: one VM's sockets, console and record */
#define FCVM_ENV_SOCKET	      "FCVM_SOCKET"
#define FCVM_ENV_STATE_DIR    "FCVM_STATE_DIR"

#define FCVM_HELPER_CHANNEL_FD 3 /* a helper's channel to the supervisor */
#define FCVM_HELPER_DATA_FD    4 /* stored: the data directory, opened by the launcher */

#endif
