// SPDX-License-Identifier: GPL-2.0
/*
 * patchgen fixture (E3, v4.14 shape): memory failure and soft offline.
 *
 * A small tree written for patchgen's tests in the shape of the kernel's
 * mm/memory-failure.c: soft offline of an in-use page migrates it with
 * reason MR_MEMORY_FAILURE and relies on migration to set PG_hwpoison.
 */
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/page-flags.h>
#include <linux/swapops.h>
#include <linux/hugetlb.h>
#include <linux/migrate.h>
#include <linux/gfp.h>
#include <linux/mutex.h>

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

	/* An injection filter may turn the page down: give the flag back. */
	if (hwpoison_filter(p)) {
		if (TestClearPageHWPoison(p))
			num_poisoned_pages_dec();
		put_hwpoison_page(p);
		return 0;
	}

	put_hwpoison_page(p);
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

	put_hwpoison_page(page);
	if (freeit)
		put_hwpoison_page(page);

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

static int soft_offline_huge_page(struct page *page, int flags)
{
	int ret;
	unsigned long pfn = page_to_pfn(page);
	struct page *hpage = compound_head(page);
	LIST_HEAD(pagelist);

	lock_page(hpage);
	if (PageHWPoison(hpage)) {
		unlock_page(hpage);
		put_hwpoison_page(hpage);
		pr_info("soft offline: %#lx: hugepage already poisoned\n", pfn);
		return -EBUSY;
	}
	unlock_page(hpage);

	ret = isolate_huge_page(hpage, &pagelist);
	/* Isolation took its own reference: drop the one we came with. */
	put_hwpoison_page(hpage);
	if (!ret) {
		pr_info("soft offline: %#lx: hugepage isolation failed\n", pfn);
		return -EBUSY;
	}

	ret = migrate_pages(&pagelist, new_page, NULL, MPOL_MF_MOVE_ALL,
				MIGRATE_SYNC, MR_MEMORY_FAILURE);
	if (ret) {
		pr_info("soft offline: %#lx: hugepage migration failed %d\n",
			pfn, ret);
		if (!list_empty(&pagelist))
			putback_movable_pages(&pagelist);
		if (ret > 0)
			ret = -EIO;
	} else {
		if (PageHuge(page))
			dissolve_free_huge_page(hpage);
	}
	return ret;
}

static int __soft_offline_page(struct page *page, int flags)
{
	int ret;
	unsigned long pfn = page_to_pfn(page);

	/*
	 * memory_failure() sets PG_hwpoison without the page lock: look
	 * again now that we hold it.
	 */
	lock_page(page);
	if (PageHWPoison(page)) {
		unlock_page(page);
		put_hwpoison_page(page);
		pr_info("soft offline: %#lx: page already poisoned\n", pfn);
		return -EBUSY;
	}
	/* A clean, unmapped page cache page can simply be dropped. */
	ret = invalidate_inode_page(page);
	unlock_page(page);
	if (ret == 1) {
		put_hwpoison_page(page);
		pr_info("soft offline: %#lx: invalidated\n", pfn);
		SetPageHWPoison(page);
		num_poisoned_pages_inc();
		return 0;
	}

	/* Otherwise migrate its contents to a new page. */
	if (PageLRU(page))
		ret = isolate_lru_page(page);
	else
		ret = isolate_movable_page(page, ISOLATE_UNEVICTABLE);
	/* Isolation took its own reference: drop the one we came with. */
	put_hwpoison_page(page);
	if (!ret) {
		LIST_HEAD(pagelist);

		if (!__PageMovable(page))
			inc_node_page_state(page, NR_ISOLATED_ANON +
						page_is_file_cache(page));
		list_add(&page->lru, &pagelist);
		ret = migrate_pages(&pagelist, new_page, NULL, MPOL_MF_MOVE_ALL,
					MIGRATE_SYNC, MR_MEMORY_FAILURE);
		if (ret) {
			if (!list_empty(&pagelist))
				putback_movable_pages(&pagelist);

			pr_info("soft offline: %#lx: migration failed %d, type %lx\n",
				pfn, ret, page->flags);
			if (ret > 0)
				ret = -EIO;
		}
	} else {
		pr_info("soft offline: %#lx: isolation failed: %d, page count %d, type %lx\n",
			pfn, ret, page_count(page), page->flags);
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
			put_hwpoison_page(page);
		return -EBUSY;
	}

	ret = get_any_page(page, pfn, flags);
	if (ret > 0) {
		if (PageHuge(page))
			ret = soft_offline_huge_page(page, flags);
		else
			ret = __soft_offline_page(page, flags);
	} else if (ret == 0) {
		if (!TestSetPageHWPoison(page))
			num_poisoned_pages_inc();
	}
	return ret;
}
