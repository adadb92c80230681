/* Names and places fixed at build time. */
#ifndef FCVM_CONFIG_H
#define FCVM_CONFIG_H

/* System mode: every process runs as a user of its own, so none can signal another or touch
 * its files (docs/architecture.md). Made by scripts/create-users. */
#define FCVM_LAUNCHER_USER   "fcvm-launcher" /* the launcher and its spawner */
#define FCVM_SUPERVISOR_USER "fcvm"
#define FCVM_NETD_USER	     "fcvm-netd"
#define FCVM_STORED_USER     "fcvm-stored" /* owns the data directory */
#define FCVM_UFFDD_USER	     "fcvm-uffdd"
#define FCVM_VMM_USER	     "fcvm-vmm"	  /* VMMs where no uid range of their own is registered */
#define FCVM_USERS_GROUP     "fcvm-users" /* who may use the system instance's socket */
/* VM slot i runs as the i-th uid of fcvm-vmm's subordinate range (/etc/subuid, /etc/subgid) */
#define FCVM_SUBUID_FILE "/etc/subuid"
#define FCVM_SUBGID_FILE "/etc/subgid"

#define FCVM_SYSTEM_STATE_DIR "/run/fcvm"
#define FCVM_SYSTEM_DATA_DIR  "/var/lib/fcvm"
#define FCVM_QUOTAS_FILE      "/etc/fcvm/quotas.conf" /* per-user quotas (docs/quotas.md) */
#define FCVM_DATA_DIR_NAME    "data"		      /* a private instance's data dir: STATE_DIR/data */
#define FCVM_SOCKET_NAME      "fcvm.sock"
#define FCVM_LOG_NAME	      "supervisor.log"
#define FCVM_VMS_DIR_NAME     "vms" /* STATE_DIR/vms/ID: one VM's sockets, console and record */
#define FCVM_ENV_SOCKET	      "FCVM_SOCKET"
#define FCVM_ENV_STATE_DIR    "FCVM_STATE_DIR"

#define FCVM_HELPER_CHANNEL_FD	    3 /* a helper's channel to the supervisor */
#define FCVM_HELPER_DATA_FD	    4 /* stored: the data directory, opened by the launcher */
#define FCVM_SUPERVISOR_LISTEN_FD   3 /* the supervisor's control socket */
#define FCVM_SUPERVISOR_LAUNCHER_FD 4 /* the supervisor's channel to the launcher */
#define FCVM_SUPERVISOR_VMS_FD	    5 /* STATE_DIR/vms, the supervisor's */

#endif
