/* SPDX-License-Identifier: GPL-2.0 */
/* patchgen fixture: the hugetlb calls soft offline makes. */
#ifndef _LINUX_HUGETLB_H
#define _LINUX_HUGETLB_H

struct page;
struct list_head;

void putback_active_hugepage(struct page *page);
bool isolate_huge_page(struct page *page, struct list_head *list);
int dissolve_free_huge_page(struct page *page);
void set_page_hwpoison_huge_page(struct page *hpage);
int dequeue_hwpoisoned_huge_page(struct page *hpage);
unsigned int compound_order(struct page *page);

#endif /* _LINUX_HUGETLB_H */
