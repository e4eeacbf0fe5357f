/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: page allocation. */
#ifndef __LINUX_GFP_H
#define __LINUX_GFP_H

#include <linux/types.h>

struct page;

#define GFP_HIGHUSER_MOVABLE	0x6000cau

struct page *alloc_pages_node(int nid, gfp_t gfp_mask, unsigned int order);
void __free_pages(struct page *page, unsigned int order);

#endif /* __LINUX_GFP_H */
