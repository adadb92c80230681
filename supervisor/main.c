/* `fcvm-supervisor`: exec'd by the launcher's spawner, first start or restart alike, as the
 * supervisor's user with no capabilities. fd 3 is the control socket (listening), fd 4 its
 * channel to the launcher, fd 5 STATE_DIR/vms; the instance comes on the command line (common/instance.h). */
#include <stdio.h>

#include "common/config.h"
#include "common/log.h"
#include "supervisor/supervisor.h"

int main(int argc, char **argv)
{
	static struct instance in;
	log_init("supervisor");
	if (instance_parse(&in, argc, argv) < 0) {
		log_err("fcvm-supervisor is started by fcvm-launcher (`fcvm supervise`), not by hand");
		return 2;
	}
	return supervisor_main(&in, FCVM_SUPERVISOR_LISTEN_FD, FCVM_SUPERVISOR_LAUNCHER_FD, FCVM_SUPERVISOR_VMS_FD);
}
