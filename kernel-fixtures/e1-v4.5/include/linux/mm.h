/* SPDX-License-Identifier: GPL-2.0 */
/*
 * patchgen fixture (v4.5 shape): the parts of <linux/mm.h> that soft
 * offline, migration and the page allocator use, before
 * <linux/page_ref.h> existed.
 */
#ifndef _LINUX_MM_H
#define _LINUX_MM_H

#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/atomic.h>
#include <linux/mmdebug.h>
#include <linux/mm_types.h>
#include <linux/mmzone.h>
#include <linux/page-flags.h>

enum zone_stat_item {
	NR_ISOLATED_ANON,
	NR_ISOLATED_FILE,
};

enum mf_flags {
	MF_COUNT_INCREASED = 1 << 0,
	MF_ACTION_REQUIRED = 1 << 1,
	MF_MUST_KILL = 1 << 2,
	MF_SOFT_OFFLINE = 1 << 3,
};

unsigned long page_to_pfn(const struct page *page);
struct page *pfn_to_page(unsigned long pfn);
int pfn_valid(unsigned long pfn);
struct zone *page_zone(const struct page *page);
int page_to_nid(const struct page *page);
void inc_zone_page_state(struct page *page, enum zone_stat_item item);
void dec_zone_page_state(struct page *page, enum zone_stat_item item);
int page_is_file_cache(struct page *page);
int PageTransHuge(struct page *page);
int page_mapped(struct page *page);
void lock_page(struct page *page);
void unlock_page(struct page *page);
int split_huge_page(struct page *page);
int invalidate_inode_page(struct page *page);
int __is_movable_balloon_page(struct page *page);
int balloon_page_movable(struct page *page);
void balloon_page_putback(struct page *page);

static inline int page_count(struct page *page)
{
	return atomic_read(&compound_head(page)->_count);
}

static inline void set_page_count(struct page *page, int v)
{
	atomic_set(&page->_count, v);
}

/*
 * Drop a reference and tell whether it was the last one (the page has no
 * users left).
 */
static inline int put_page_testzero(struct page *page)
{
	VM_BUG_ON_PAGE(atomic_read(&page->_count) == 0, page);
	return atomic_dec_and_test(&page->_count);
}

/*
 * Take a reference unless the page is already free; the pfn walkers of
 * memory failure and compaction use this to pin a page they did not own.
 */
static inline int get_page_unless_zero(struct page *page)
{
	return atomic_inc_not_zero(&page->_count);
}

static inline void get_page(struct page *page)
{
	page = compound_head(page);
	VM_BUG_ON_PAGE(atomic_read(&page->_count) <= 0, page);
	atomic_inc(&page->_count);
}

void __put_page(struct page *page);

static inline void put_page(struct page *page)
{
	page = compound_head(page);

	if (put_page_testzero(page))
		__put_page(page);
}

extern int memory_failure(unsigned long pfn, int trapno, int flags);
extern int unpoison_memory(unsigned long pfn);
extern int get_hwpoison_page(struct page *page);
extern int hwpoison_filter(struct page *p);
#define put_hwpoison_page(page)	put_page(page)
extern int sysctl_memory_failure_recovery;
extern atomic_long_t num_poisoned_pages;
extern int soft_offline_page(struct page *page, int flags);

#endif /* _LINUX_MM_H */
