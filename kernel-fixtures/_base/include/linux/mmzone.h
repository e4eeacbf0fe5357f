/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: zones and their lock. */
#ifndef _LINUX_MMZONE_H
#define _LINUX_MMZONE_H

#include <linux/spinlock.h>
#include <linux/list.h>

#define MAX_ORDER 11

struct free_area {
	struct list_head	free_list;
	unsigned long		nr_free;
};

struct zone {
	spinlock_t		lock;
	struct free_area	free_area[MAX_ORDER];
};

#endif /* _LINUX_MMZONE_H */
