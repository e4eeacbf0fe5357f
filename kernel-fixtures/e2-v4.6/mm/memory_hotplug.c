// SPDX-License-Identifier: GPL-2.0
/*
 * patchgen fixture (v4.4-v4.7 shape): memory hot-remove.
 *
 * A small tree written for patchgen's tests in the shape of the kernel's
 * mm/memory_hotplug.c: offlining a range migrates every LRU page it can
 * pin, and fails with -EBUSY on a page it pins but cannot isolate.
 */
#include <linux/mm.h>
#include <linux/gfp.h>
#include <linux/migrate.h>
#include <linux/hugetlb.h>
#include <linux/page-flags.h>

#include "internal.h"

#define NR_OFFLINE_AT_ONCE_PAGES	256

static struct page *new_node_page(struct page *page, unsigned long private,
		int **result)
{
	return alloc_pages_node(page_to_nid(page), GFP_HIGHUSER_MOVABLE, 0);
}

static int
do_migrate_range(unsigned long start_pfn, unsigned long end_pfn)
{
	unsigned long pfn;
	struct page *page;
	int move_pages = NR_OFFLINE_AT_ONCE_PAGES;
	int not_managed = 0;
	int ret = 0;
	LIST_HEAD(source);

	for (pfn = start_pfn; pfn < end_pfn && move_pages > 0; pfn++) {
		if (!pfn_valid(pfn))
			continue;
		page = pfn_to_page(pfn);

		/* Huge pages take a path of their own, not shown here. */
		if (PageHuge(page))
			continue;

		if (!get_page_unless_zero(page))
			continue;
		/* A free page needs no migration; LRU pages can be isolated. */
		ret = isolate_lru_page(page);
		if (!ret) { /* Success */
			put_page(page);
			list_add_tail(&page->lru, &source);
			move_pages--;
			inc_zone_page_state(page, NR_ISOLATED_ANON +
					    page_is_file_cache(page));

		} else {
			put_page(page);
			/* Still in use by someone: this range cannot go. */
			if (page_count(page)) {
				not_managed++;
				ret = -EBUSY;
				break;
			}
		}
	}
	if (!list_empty(&source)) {
		if (not_managed) {
			putback_movable_pages(&source);
			goto out;
		}

		ret = migrate_pages(&source, new_node_page, NULL, 0,
					MIGRATE_SYNC, MR_MEMORY_HOTPLUG);
		if (ret)
			putback_movable_pages(&source);
	}
out:
	return ret;
}

int offline_pages(unsigned long start_pfn, unsigned long nr_pages)
{
	int retry = 5;
	int ret;

	do {
		ret = do_migrate_range(start_pfn, start_pfn + nr_pages);
	} while (ret && --retry);
	return ret;
}
