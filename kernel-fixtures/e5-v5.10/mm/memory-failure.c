// SPDX-License-Identifier: GPL-2.0
/*
 * patchgen fixture (E5, v5.10 shape): memory failure and soft offline.
 *
 * A small tree written for patchgen's tests in the shape of the kernel's
 * mm/memory-failure.c: soft offline of an in-use page migrates it and
 * then poisons, releases and keeps the old page in page_handle_poison().
 */
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/page-flags.h>
#include <linux/swapops.h>
#include <linux/hugetlb.h>
#include <linux/migrate.h>
#include <linux/gfp.h>

#include "internal.h"

atomic_long_t num_poisoned_pages __read_mostly = { 0 };

/*
 * Pin a page found by pfn, if it is in use; a free page is not pinned.
 */
int get_hwpoison_page(struct page *page)
{
	struct page *head = compound_head(page);

	return get_page_unless_zero(head);
}

int memory_failure(unsigned long pfn, int trapno, int flags)
{
	struct page *p;

	if (!pfn_valid(pfn))
		return -ENXIO;

	p = pfn_to_page(pfn);
	if (TestSetPageHWPoison(p)) {
		pr_err("Memory failure: %#lx: page was already poisoned\n", pfn);
		return 0;
	}
	num_poisoned_pages_inc();

	/* A free page is left to the allocator, which will skip it. */
	if (!get_hwpoison_page(p))
		return 0;

	put_page(p);
	return -EBUSY;
}

int unpoison_memory(unsigned long pfn)
{
	struct page *page;
	struct page *p;
	int freeit = 0;

	if (!pfn_valid(pfn))
		return -ENXIO;

	p = pfn_to_page(pfn);
	page = compound_head(p);

	if (!PageHWPoison(p)) {
		pr_info("Unpoison: %#lx is not poisoned\n", pfn);
		return 0;
	}

	if (page_count(page) > 1) {
		pr_info("Unpoison: %#lx is in use by someone else\n", pfn);
		return 0;
	}

	if (!get_hwpoison_page(p)) {
		if (TestClearPageHWPoison(p))
			num_poisoned_pages_dec();
		pr_info("Unpoison: unpoisoned free page %#lx\n", pfn);
		return 0;
	}

	lock_page(page);
	if (TestClearPageHWPoison(page)) {
		pr_info("Unpoison: unpoisoned page %#lx\n", pfn);
		num_poisoned_pages_dec();
		freeit = 1;
	}
	unlock_page(page);

	put_page(page);
	if (freeit)
		put_page(page);

	return 0;
}

static struct page *new_page(struct page *p, unsigned long private, int **x)
{
	return alloc_pages_node(page_to_nid(p), GFP_HIGHUSER_MOVABLE, 0);
}

static int get_any_page(struct page *page, unsigned long pfn, int flags)
{
	if (flags & MF_COUNT_INCREASED)
		return 1;

	/* A page with no references is free: soft offline it as such. */
	if (!get_hwpoison_page(page))
		return 0;

	return 1;
}

/*
 * Poison a page soft offline is done with, release the reference the
 * caller holds if asked to, and keep one for hwpoison.
 */
static bool page_handle_poison(struct page *page, bool hugepage_or_freepage,
			       bool release)
{
	if (hugepage_or_freepage) {
		if (dissolve_free_huge_page(page) || !take_page_off_buddy(page))
			return false;
	}

	SetPageHWPoison(page);
	if (release)
		put_page(page);
	page_ref_inc(page);
	num_poisoned_pages_inc();

	return true;
}

static int __soft_offline_page(struct page *page, int flags)
{
	int ret;
	unsigned long pfn = page_to_pfn(page);
	bool huge = PageHuge(page);
	LIST_HEAD(pagelist);

	lock_page(page);
	if (PageHWPoison(page)) {
		unlock_page(page);
		put_page(page);
		pr_info("soft offline: %#lx: page already poisoned\n", pfn);
		return 0;
	}

	ret = huge ? 0 : invalidate_inode_page(page);
	unlock_page(page);
	if (ret) {
		pr_info("soft offline: %#lx: invalidated\n", pfn);
		page_handle_poison(page, false, true);
		return 0;
	}

	ret = isolate_lru_page(page);
	if (!ret) {
		list_add(&page->lru, &pagelist);
		ret = migrate_pages(&pagelist, new_page, NULL, MPOL_MF_MOVE_ALL,
				    MIGRATE_SYNC, MR_MEMORY_FAILURE);
		if (!ret) {
			bool release = !huge;

			if (!page_handle_poison(page, huge, release))
				ret = -EBUSY;
		} else {
			if (!list_empty(&pagelist))
				putback_movable_pages(&pagelist);

			pr_info("soft offline: %#lx: migration failed %d\n",
				pfn, ret);
			if (ret > 0)
				ret = -EIO;
		}
	} else {
		pr_info("soft offline: %#lx: isolation failed\n", pfn);
		ret = -EBUSY;
	}
	return ret;
}

/**
 * soft_offline_page - stop using a page whose memory looks unreliable
 * @page: the page
 * @flags: MF_COUNT_INCREASED if the caller holds a reference
 *
 * Migrate the contents of an in-use page elsewhere and poison the page;
 * poison a free page directly.  Return 0 on success, a negative errno
 * otherwise.
 */
int soft_offline_page(struct page *page, int flags)
{
	int ret;
	unsigned long pfn = page_to_pfn(page);

	if (PageHWPoison(page)) {
		pr_info("soft offline: %#lx: page already poisoned\n", pfn);
		if (flags & MF_COUNT_INCREASED)
			put_page(page);
		return -EBUSY;
	}

	ret = get_any_page(page, pfn, flags);
	if (ret > 0) {
		ret = __soft_offline_page(page, flags);
	} else if (ret == 0) {
		if (!page_handle_poison(page, true, false))
			ret = -EBUSY;
	}
	return ret;
}
