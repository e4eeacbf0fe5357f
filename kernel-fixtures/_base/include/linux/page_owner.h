/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: page owner tracking hooks. */
#ifndef __LINUX_PAGE_OWNER_H
#define __LINUX_PAGE_OWNER_H

struct page;

#ifdef CONFIG_PAGE_OWNER
void reset_page_owner(struct page *page, unsigned int order);
void set_page_owner_migrate_reason(struct page *page, int reason);
#else
static inline void reset_page_owner(struct page *page, unsigned int order)
{
}

static inline void set_page_owner_migrate_reason(struct page *page, int reason)
{
}
#endif

#endif /* __LINUX_PAGE_OWNER_H */
