// SPDX-License-Identifier: GPL-2.0
/* The superblock of demofs (a fixture for patchgen's ifnullfree rule). */
#include <linux/slab.h>

struct demofs_sb_info {
	void *bitmap;
};

static void demofs_put_super(struct demofs_sb_info *sbi)
{
	if (sbi->bitmap)
		vfree(sbi->bitmap);
}
