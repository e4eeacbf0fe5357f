// SPDX-License-Identifier: GPL-2.0
/*
 * patchgen fixture (E1 free path, v4.4-v4.5 shape): the page allocator.
 *
 * A small tree written for patchgen's tests in the shape of the kernel's
 * mm/page_alloc.c free path before v4.7: free_pages_check() builds a
 * bad_reason and runs for every page of a freed block, from
 * free_pages_prepare(page, order).
 */
#include <linux/mm.h>
#include <linux/gfp.h>
#include <linux/memcontrol.h>
#include <linux/page_owner.h>
#include <linux/kasan.h>
#include <trace/events/kmem.h>

#include "internal.h"

struct per_cpu_pages {
	int count;
	int high;
	int batch;
	struct list_head list;
};

static struct per_cpu_pages boot_pcp;
static struct zone boot_zone;

static void bad_page(struct page *page, const char *reason,
		unsigned long bad_flags)
{
	/* A poisoned page is expected to be bad: say nothing. */
	if (PageHWPoison(page)) {
		atomic_set(&page->_mapcount, -1);
		return;
	}

	pr_alert("BUG: Bad page state: pfn %#lx, %s, flags %#lx\n",
		 page_to_pfn(page), reason, page->flags & bad_flags);
	dump_page(page, reason);
	atomic_set(&page->_mapcount, -1);
}

static inline int free_pages_check(struct page *page)
{
	const char *bad_reason = NULL;
	unsigned long bad_flags = 0;

	if (unlikely(atomic_read(&page->_mapcount) != -1))
		bad_reason = "nonzero mapcount";
	if (unlikely(page->mapping != NULL))
		bad_reason = "non-NULL mapping";
	if (unlikely(atomic_read(&page->_count) != 0))
		bad_reason = "nonzero _count";
	if (unlikely(page->flags & PAGE_FLAGS_CHECK_AT_FREE)) {
		bad_reason = "PAGE_FLAGS_CHECK_AT_FREE flag(s) set";
		bad_flags = PAGE_FLAGS_CHECK_AT_FREE;
	}
#ifdef CONFIG_MEMCG
	if (unlikely(page->mem_cgroup))
		bad_reason = "page still charged to cgroup";
#endif
	if (unlikely(bad_reason)) {
		bad_page(page, bad_reason, bad_flags);
		return 1;
	}
	if (page->flags & PAGE_FLAGS_CHECK_AT_PREP)
		page->flags &= ~PAGE_FLAGS_CHECK_AT_PREP;
	return 0;
}

static int free_tail_pages_check(struct page *head_page, struct page *page)
{
	if (unlikely(!PageTail(page))) {
		bad_page(page, "PageTail not set", 0);
		return 1;
	}
	page->mapping = NULL;
	page->compound_head = 0;
	return 0;
}

static bool free_pages_prepare(struct page *page, unsigned int order)
{
	bool compound = PageCompound(page);
	int i, bad = 0;

	VM_BUG_ON_PAGE(PageTail(page), page);

	trace_mm_page_free(page, order);
	kasan_free_pages(page, order);

	if (PageAnon(page))
		page->mapping = NULL;
	bad += free_pages_check(page);
	for (i = 1; i < (1 << order); i++) {
		if (compound)
			bad += free_tail_pages_check(page, page + i);
		bad += free_pages_check(page + i);
	}
	if (bad)
		return false;

	reset_page_owner(page, order);

	arch_free_page(page, order);
	kernel_map_pages(page, 1 << order, 0);

	return true;
}

static void __free_one_page(struct page *page, struct zone *zone,
			    unsigned int order)
{
	list_add(&page->lru, &zone->free_area[order].free_list);
	zone->free_area[order].nr_free++;
	atomic_set(&page->_mapcount, PAGE_BUDDY_MAPCOUNT_VALUE);
}

/*
 * Move @count pages from the per-cpu list to the buddy lists.
 */
static void free_pcppages_bulk(struct zone *zone, int count,
			       struct per_cpu_pages *pcp)
{
	unsigned long flags;

	spin_lock_irqsave(&zone->lock, flags);
	while (count-- > 0 && !list_empty(&pcp->list)) {
		struct page *page = list_entry(pcp->list.prev, struct page, lru);

		list_del(&page->lru);
		pcp->count--;
		__free_one_page(page, zone, 0);
	}
	spin_unlock_irqrestore(&zone->lock, flags);
}

static void __free_pages_ok(struct page *page, unsigned int order)
{
	unsigned long flags;
	struct zone *zone = page_zone(page);

	if (!free_pages_prepare(page, order))
		return;

	spin_lock_irqsave(&zone->lock, flags);
	__free_one_page(page, zone, order);
	spin_unlock_irqrestore(&zone->lock, flags);
}

/*
 * Free an order-0 page to the per-cpu list.
 */
void free_hot_cold_page(struct page *page, bool cold)
{
	struct per_cpu_pages *pcp = &boot_pcp;

	if (!free_pages_prepare(page, 0))
		return;

	list_add(&page->lru, &pcp->list);
	pcp->count++;
	if (pcp->count >= pcp->high)
		free_pcppages_bulk(&boot_zone, pcp->batch, pcp);
}

void __free_pages(struct page *page, unsigned int order)
{
	if (put_page_testzero(page)) {
		if (order == 0)
			free_hot_cold_page(page, false);
		else
			__free_pages_ok(page, order);
	}
}

/*
 * Whether a page is free in the buddy allocator.
 */
bool is_free_buddy_page(struct page *page)
{
	return PageBuddy(page);
}

/*
 * The allocation side: a page with a bad state, a poisoned one included,
 * is reported (silently, for a poisoned one) and never handed out.
 */
static inline int check_new_page(struct page *page)
{
	const char *bad_reason = NULL;
	unsigned long bad_flags = 0;

	if (unlikely(atomic_read(&page->_mapcount) != -1))
		bad_reason = "nonzero mapcount";
	if (unlikely(page->mapping != NULL))
		bad_reason = "non-NULL mapping";
	if (unlikely(atomic_read(&page->_count) != 0))
		bad_reason = "nonzero _count";
	if (unlikely(page->flags & __PG_HWPOISON)) {
		bad_reason = "HWPoisoned (hardware-corrupted)";
		bad_flags = __PG_HWPOISON;
	}
	if (unlikely(bad_reason)) {
		bad_page(page, bad_reason, bad_flags);
		return 1;
	}
	return 0;
}

struct page *rmqueue_pcplist(struct per_cpu_pages *pcp)
{
	struct page *page;

	do {
		if (list_empty(&pcp->list))
			return NULL;
		page = list_entry(pcp->list.next, struct page, lru);
		list_del(&page->lru);
		pcp->count--;
	} while (check_new_page(page));

	return page;
}
