/* The SNAPPACK wire version and the capabilities this build advertises. */
#include "keel_config.h"
#include "snap/snap.h"

int snap_print_capabilities(FILE *f)
{
	/* The version comes from SNAP_WIRE_VERSION, the same constant SNAP_WIRE_MAGIC spells out. */
	if (fprintf(f, "snappack %d\ncapabilities obj manifest%s%s\n", SNAP_WIRE_VERSION,
		    CONFIG_SNAP_SIGNATURES ? " sig-ecdsa-p256" : "", CONFIG_SNAP_CAR ? " car1" : "") < 0)
		return -1;
	return 0;
}
