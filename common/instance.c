#include <string.h>

#include "supervisor/instance.h"

static const char *const helper_names[HELPER__COUNT] = {
    [HELPER_NETD] = "netd",
    [HELPER_STORED] = "stored",
    [HELPER_UFFDD] = "uffdd",
};

const char *helper_name(enum helper_id id)
{
	return (unsigned)id < HELPER__COUNT ? helper_names[id] : "?";
}

int helper_by_name(const char *name)
{
	for (int i = 0; i < HELPER__COUNT; i++)
		if (name && strcmp(name, helper_names[i]) == 0)
			return i;
	return -1;
}
