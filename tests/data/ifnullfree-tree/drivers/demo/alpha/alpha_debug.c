// SPDX-License-Identifier: GPL-2.0
/* Debug buffers of the alpha demo driver (a fixture). */
#include <linux/slab.h>

static void alpha_debug_free(char **bufs, int count)
{
	int i;

	for (i = 0; i < count; i++) {
		if (bufs[i])
			kfree(bufs[i]);
	}
}
