/* The SNAPPACK wire version and the capabilities this build advertises. */
#include "keel_config.h"
#include "snap/snap.h"

int snap_print_capabilities(FILE *f)
{
	if (fprintf(f, "snappack %d\ncapabilities obj manifest%s\n", 1, CONFIG_SNAP_CAR ? " car1" : "") < 0)
		return -1;
	return 0;
}
