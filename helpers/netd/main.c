/* fcvm-netd: networking: network namespaces, veth, tap, addresses, routes, nftables (served in a later issue).
 * Started by the launcher with its channel to the supervisor on fd 3; serves only what its
 * dispatch table lists (ping for now). */
#include <stddef.h>

#include "helpers/common/helper.h"

int main(int argc, char **argv)
{
	return helper_main("netd", &policy_netd, NULL, 0, NULL, argc, argv);
}
