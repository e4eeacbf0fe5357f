// SPDX-License-Identifier: GPL-2.0
/* The alpha demo driver (a fixture for patchgen's ifnullfree rule). */
#include <linux/slab.h>

struct alpha_dev {
	void *regs;
	char *name;
	void *table;
};

static void alpha_teardown(struct alpha_dev *dev)
{
	if (dev->name)
		kfree(dev->name);
	if (dev->table != NULL)
		vfree(dev->table);
	if (dev->regs) {
		kfree(dev->regs);
		dev->regs = NULL;
	}
}
