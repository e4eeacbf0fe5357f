// SPDX-License-Identifier: GPL-2.0
/* A slab allocator front end in the shape of the kernel's (a fixture). */
#include <linux/slab.h>

/**
 * kfree - give back memory from kmalloc()
 * @objp: what kmalloc() returned
 *
 * If @objp is NULL, no operation is performed.
 */
void kfree(const void *objp)
{
	struct demo_slab *slab;

	if (unlikely(ZERO_OR_NULL_PTR(objp)))
		return;

	slab = demo_slab_of(objp);
	demo_slab_put(slab, objp);
}
