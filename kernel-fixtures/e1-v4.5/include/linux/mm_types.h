/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture (v4.4-v4.6 shape): struct page with _count. */
#ifndef _LINUX_MM_TYPES_H
#define _LINUX_MM_TYPES_H

#include <linux/types.h>

struct address_space;
struct mem_cgroup;
struct dev_pagemap;

struct page {
	unsigned long flags;
	struct address_space *mapping;
	pgoff_t index;
	atomic_t _mapcount;
	atomic_t _count;
	union {
		struct list_head lru;
		struct dev_pagemap *pgmap; /* ZONE_DEVICE pages are never on an
					    * lru or handled by a slab
					    * allocator, this points to the
					    * hosting device page map.
					    */
	};
	unsigned long compound_head;
	unsigned long private;
#ifdef CONFIG_MEMCG
	struct mem_cgroup *mem_cgroup;
#endif
};

#endif /* _LINUX_MM_TYPES_H */
