/* fcvm-uffdd: userfaultfd page serving for snapshot clones (served in a later issue).
 * Started by the launcher with its channel to the supervisor on fd 3; serves only what its
 * dispatch table lists (ping for now). */
#include <stddef.h>

#include "helpers/common/helper.h"

int main(int argc, char **argv)
{
	return helper_main("uffdd", &policy_uffdd, NULL, 0, NULL, argc, argv);
}
