// SPDX-License-Identifier: GPL-2.0
/* Virtually contiguous memory, in the shape of the kernel's (a fixture). */
#include <linux/slab.h>

void vfree(const void *addr)
{
	if (!addr)
		return;
	demo_vunmap(addr);
}
