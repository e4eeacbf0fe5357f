// SPDX-License-Identifier: GPL-2.0
/*
 * patchgen fixture (E3 free path, v4.7-v4.17 shape): the page allocator.
 *
 * A small tree written for patchgen's tests in the shape of the kernel's
 * mm/page_alloc.c free path: free_pages_check() is a fast check plus
 * free_pages_check_bad(), and free_pages_prepare() skips it on the
 * per-cpu fast path unless CONFIG_DEBUG_VM.
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

static inline bool page_expected_state(struct page *page,
					unsigned long check_flags)
{
	if (unlikely(atomic_read(&page->_mapcount) != -1))
		return false;

	if (unlikely((unsigned long)page->mapping |
			page_ref_count(page) |
#ifdef CONFIG_MEMCG
			(unsigned long)page->mem_cgroup |
#endif
			(page->flags & check_flags)))
		return false;

	return true;
}

static void free_pages_check_bad(struct page *page)
{
	const char *bad_reason = NULL;
	unsigned long bad_flags = 0;

	if (unlikely(atomic_read(&page->_mapcount) != -1))
		bad_reason = "nonzero mapcount";
	if (unlikely(page->mapping != NULL))
		bad_reason = "non-NULL mapping";
	if (unlikely(page_ref_count(page) != 0))
		bad_reason = "nonzero _refcount";
	if (unlikely(page->flags & PAGE_FLAGS_CHECK_AT_FREE)) {
		bad_reason = "PAGE_FLAGS_CHECK_AT_FREE flag(s) set";
		bad_flags = PAGE_FLAGS_CHECK_AT_FREE;
	}
	bad_page(page, bad_reason, bad_flags);
}

static inline int free_pages_check(struct page *page)
{
	if (likely(page_expected_state(page, PAGE_FLAGS_CHECK_AT_FREE)))
		return 0;

	/* Something is wrong with the page: find out what and say so. */
	free_pages_check_bad(page);
	return 1;
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

static __always_inline bool free_pages_prepare(struct page *page,
					unsigned int order, bool check_free)
{
	int bad = 0;

	VM_BUG_ON_PAGE(PageTail(page), page);

	trace_mm_page_free(page, order);

	/*
	 * Check the tail pages before the head page's compound information
	 * is cleared.
	 */
	if (unlikely(order)) {
		bool compound = PageCompound(page);
		int i;

		for (i = 1; i < (1 << order); i++) {
			if (compound)
				bad += free_tail_pages_check(page, page + i);
			if (unlikely(free_pages_check(page + i))) {
				bad++;
				continue;
			}
			(page + i)->flags &= ~PAGE_FLAGS_CHECK_AT_PREP;
		}
	}
	if (PageMappingFlags(page))
		page->mapping = NULL;
	if (memcg_kmem_enabled() && PageKmemcg(page))
		memcg_kmem_uncharge(page, order);
	if (check_free)
		bad += free_pages_check(page);
	if (bad)
		return false;

	page->flags &= ~PAGE_FLAGS_CHECK_AT_PREP;
	reset_page_owner(page, order);

	arch_free_page(page, order);
	kernel_map_pages(page, 1 << order, 0);
	kasan_free_pages(page, order);

	return true;
}

#ifdef CONFIG_DEBUG_VM
static inline bool free_pcp_prepare(struct page *page)
{
	return free_pages_prepare(page, 0, true);
}

static inline bool bulkfree_pcp_prepare(struct page *page)
{
	return false;
}
#else
static bool free_pcp_prepare(struct page *page)
{
	return free_pages_prepare(page, 0, false);
}

static bool bulkfree_pcp_prepare(struct page *page)
{
	return free_pages_check(page);
}
#endif /* CONFIG_DEBUG_VM */

static void __free_one_page(struct page *page, struct zone *zone,
			    unsigned int order)
{
	list_add(&page->lru, &zone->free_area[order].free_list);
	zone->free_area[order].nr_free++;
	atomic_set(&page->_mapcount, PAGE_BUDDY_MAPCOUNT_VALUE);
}

/*
 * Move @count pages from the per-cpu list to the buddy lists; this is
 * where pages that skipped the check on the fast path are checked.
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
		if (bulkfree_pcp_prepare(page))
			continue;
		__free_one_page(page, zone, 0);
	}
	spin_unlock_irqrestore(&zone->lock, flags);
}

static void __free_pages_ok(struct page *page, unsigned int order)
{
	unsigned long flags;
	struct zone *zone = page_zone(page);

	if (!free_pages_prepare(page, order, true))
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

	if (!free_pcp_prepare(page))
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
 * is reported and never handed out.
 */
static int check_new_page(struct page *page)
{
	if (likely(page_expected_state(page,
				PAGE_FLAGS_CHECK_AT_PREP | __PG_HWPOISON)))
		return 0;

	bad_page(page, "bad state at allocation", 0);
	return 1;
}

/*
 * Pages taken from the per-cpu lists were checked when they went there,
 * unless free_pages_check() was skipped: only CONFIG_DEBUG_VM checks them
 * again.
 */
#ifdef CONFIG_DEBUG_VM
static bool check_new_pcp(struct page *page)
{
	return check_new_page(page);
}
#else
static bool check_new_pcp(struct page *page)
{
	return false;
}
#endif /* CONFIG_DEBUG_VM */

struct page *rmqueue_pcplist(struct per_cpu_pages *pcp)
{
	struct page *page;

	do {
		if (list_empty(&pcp->list))
			return NULL;
		page = list_entry(pcp->list.next, struct page, lru);
		list_del(&page->lru);
		pcp->count--;
	} while (check_new_pcp(page));

	return page;
}
