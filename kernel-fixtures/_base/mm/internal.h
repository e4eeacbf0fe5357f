/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture (v4.x shape): mm/'s internal helpers. */
#ifndef __MM_INTERNAL_H
#define __MM_INTERNAL_H

#include <linux/mm.h>

/*
 * Give a page whose reference count is zero its first reference again.
 */
static inline void set_page_refcounted(struct page *page)
{
	VM_BUG_ON_PAGE(PageTail(page), page);
	VM_BUG_ON_PAGE(page_ref_count(page), page);
	set_page_count(page, 1);
}

extern bool is_free_buddy_page(struct page *page);
extern void free_hot_cold_page(struct page *page, bool cold);

#endif /* __MM_INTERNAL_H */
