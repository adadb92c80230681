/* fcvm-stored: storage: images and VM disks under the data directory (served in a later issue).
 * Started by the launcher with its channel to the supervisor on fd 3; serves only what its
 * dispatch table lists (ping for now). */
#include <stddef.h>

#include "helpers/common/helper.h"

int main(int argc, char **argv)
{
	return helper_main("stored", &policy_stored, NULL, 0, NULL, argc, argv);
}
