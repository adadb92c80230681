/* The compiled-in policies (build/gen/policy_NAME.c, from policy/NAME.policy), by name. */
#include <string.h>

#include "policy/sandbox.h"

const struct sandbox_policy *sandbox_policy_by_name(const char *name)
{
	static const struct sandbox_policy *const all[] = {&policy_supervisor, &policy_launcher, &policy_spawner,
							   &policy_netd,       &policy_stored,	 &policy_uffdd,
							   &policy_vmm_qemu};
	for (size_t i = 0; name && i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(all[i]->name, name) == 0)
			return all[i];
	return NULL;
}
