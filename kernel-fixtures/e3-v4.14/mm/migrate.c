// SPDX-License-Identifier: GPL-2.0
/*
 * patchgen fixture (E3, v4.14 shape): page migration.
 *
 * A small tree written for patchgen's tests in the shape of the kernel's
 * mm/migrate.c: the functions soft offline goes through, with the
 * put_page() / test_set_page_hwpoison() pair after a successful migration.
 */
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/swapops.h>
#include <linux/hugetlb.h>
#include <linux/page_owner.h>

#include "internal.h"

/*
 * Some old compilers miscompile unmap_and_move() when it is inlined;
 * the kernel keeps it out of line on those and declares it through a
 * macro, which is why a C parser cannot read its declaration.
 */
#ifdef CONFIG_ARM_OLD_GCC
#define ICE_noinline noinline
#else
#define ICE_noinline
#endif

/*
 * Put back the pages that could not be migrated.
 */
void putback_movable_pages(struct list_head *l)
{
	struct page *page;
	struct page *page2;

	list_for_each_entry_safe(page, page2, l, lru) {
		if (unlikely(PageHuge(page))) {
			putback_active_hugepage(page);
			continue;
		}
		list_del(&page->lru);
		if (unlikely(__PageMovable(page))) {
			lock_page(page);
			if (PageMovable(page))
				putback_movable_page(page);
			else
				__ClearPageIsolated(page);
			unlock_page(page);
			put_page(page);
		} else {
			putback_lru_page(page);
		}
	}
}

static int __unmap_and_move(struct page *page, struct page *newpage,
			    int force, enum migrate_mode mode)
{
	if (!force && mode == MIGRATE_ASYNC && page_mapped(page))
		return -EAGAIN;

	newpage->index = page->index;
	newpage->mapping = page->mapping;
	return MIGRATEPAGE_SUCCESS;
}

/*
 * Obtain the lock on page, remove all ptes and migrate the page
 * to the newly allocated page in newpage.
 */
static ICE_noinline int unmap_and_move(new_page_t get_new_page,
				   free_page_t put_new_page,
				   unsigned long private, struct page *page,
				   int force, enum migrate_mode mode,
				   enum migrate_reason reason)
{
	int rc = MIGRATEPAGE_SUCCESS;
	int *result = NULL;
	struct page *newpage;

	newpage = get_new_page(page, private, &result);
	if (!newpage)
		return -ENOMEM;

	if (page_count(page) == 1) {
		/* Someone freed the page under us: nothing left to do. */
		goto out;
	}

	if (unlikely(PageTransHuge(page))) {
		lock_page(page);
		rc = split_huge_page(page);
		unlock_page(page);
		if (rc)
			goto out;
	}

	rc = __unmap_and_move(page, newpage, force, mode);
	if (rc == MIGRATEPAGE_SUCCESS)
		set_page_owner_migrate_reason(newpage, reason);

out:
	if (rc != -EAGAIN) {
		/*
		 * The migrated page has had its references moved to the new
		 * one; a page that was not migrated keeps them.
		 */
		list_del(&page->lru);

		/*
		 * Non-LRU pages that compaction moves are not counted in
		 * NR_ISOLATED_*; __PageMovable() tells them apart.
		 */
		if (likely(!__PageMovable(page)))
			mod_node_page_state(page_pgdat(page), NR_ISOLATED_ANON +
					page_is_file_cache(page), -hpage_nr_pages(page));
	}

	/*
	 * On success, drop the reference taken at isolation; otherwise put
	 * the page back where it came from unless we will retry.
	 */
	if (rc == MIGRATEPAGE_SUCCESS) {
		put_page(page);
		if (reason == MR_MEMORY_FAILURE) {
			/*
			 * Poison the page we have just freed, on purpose:
			 * odd as it is, that is how PG_hwpoison works for
			 * now.
			 */
			if (!test_set_page_hwpoison(page))
				num_poisoned_pages_inc();
		}
	} else {
		if (rc != -EAGAIN) {
			if (likely(!__PageMovable(page))) {
				putback_lru_page(page);
				goto put_new;
			}

			lock_page(page);
			if (PageMovable(page))
				putback_movable_page(page);
			else
				__ClearPageIsolated(page);
			unlock_page(page);
			put_page(page);
		}
put_new:
		if (put_new_page)
			put_new_page(newpage, private);
		else
			put_page(newpage);
	}

	if (result) {
		if (rc)
			*result = rc;
		else
			*result = page_to_nid(newpage);
	}
	return rc;
}

/*
 * The hugepage counterpart of unmap_and_move(): soft offline of a
 * hugepage also sets PG_hwpoison here, after putback_active_hugepage().
 */
static int unmap_and_move_huge_page(new_page_t get_new_page,
				free_page_t put_new_page, unsigned long private,
				struct page *hpage, int force,
				enum migrate_mode mode, int reason)
{
	int rc = -EAGAIN;
	int *result = NULL;
	struct page *new_hpage;

	new_hpage = get_new_page(hpage, private, &result);
	if (!new_hpage)
		return -ENOMEM;

	if (!trylock_page(hpage)) {
		if (!force || mode != MIGRATE_SYNC)
			goto out;
		lock_page(hpage);
	}
	rc = __unmap_and_move(hpage, new_hpage, force, mode);
	unlock_page(hpage);
out:
	if (rc != -EAGAIN)
		putback_active_hugepage(hpage);
	if (reason == MR_MEMORY_FAILURE && !test_set_page_hwpoison(hpage))
		num_poisoned_pages_inc();

	if (put_new_page)
		put_new_page(new_hpage, private);
	else
		putback_active_hugepage(new_hpage);

	if (result) {
		if (rc)
			*result = rc;
		else
			*result = page_to_nid(new_hpage);
	}
	return rc;
}

/*
 * Migrate the pages on the list @from to pages that @get_new_page
 * allocates; return the number of pages that could not be migrated, or an
 * error code.
 */
int migrate_pages(struct list_head *from, new_page_t get_new_page,
		free_page_t put_new_page, unsigned long private,
		enum migrate_mode mode, int reason)
{
	int retry = 1;
	int nr_failed = 0;
	int pass = 0;
	struct page *page;
	struct page *page2;
	int rc;

	for (pass = 0; pass < 10 && retry; pass++) {
		retry = 0;

		list_for_each_entry_safe(page, page2, from, lru) {
			if (PageHuge(page))
				rc = unmap_and_move_huge_page(get_new_page,
						put_new_page, private, page,
						pass > 2, mode, reason);
			else
				rc = unmap_and_move(get_new_page, put_new_page,
						private, page, pass > 2, mode,
						reason);

			switch (rc) {
			case -ENOMEM:
				nr_failed++;
				goto out;
			case -EAGAIN:
				retry++;
				break;
			case MIGRATEPAGE_SUCCESS:
				break;
			default:
				nr_failed++;
				break;
			}
		}
	}
	nr_failed += retry;
	rc = nr_failed;
out:
	return rc;
}
