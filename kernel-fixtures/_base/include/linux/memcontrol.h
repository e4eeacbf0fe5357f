/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: the memory cgroup calls on the free path. */
#ifndef _LINUX_MEMCONTROL_H
#define _LINUX_MEMCONTROL_H

#include <linux/types.h>

struct page;

void mem_cgroup_uncharge(struct page *page);

#ifdef CONFIG_MEMCG_KMEM
bool memcg_kmem_enabled(void);
void memcg_kmem_uncharge(struct page *page, int order);
void __memcg_kmem_uncharge_page(struct page *page, int order);
#else
static inline bool memcg_kmem_enabled(void)
{
	return false;
}

static inline void memcg_kmem_uncharge(struct page *page, int order)
{
}

static inline void __memcg_kmem_uncharge_page(struct page *page, int order)
{
}
#endif

#endif /* _LINUX_MEMCONTROL_H */
