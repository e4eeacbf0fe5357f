/* expect: shape=related function=soft_offline_huge_page page=page finder=surplus action=report */
/* v4.5-v4.9 shape: after a successful migration, the source is poisoned
 * here; a surplus hugepage has already gone back to the buddy allocator. */
static int soft_offline_huge_page(struct page *page, int flags)
{
	int ret;
	struct page *hpage = compound_head(page);
	LIST_HEAD(pagelist);

	ret = migrate_pages(&pagelist, new_page, NULL, MPOL_MF_MOVE_ALL,
				MIGRATE_SYNC, MR_MEMORY_FAILURE);
	if (ret) {
		if (ret > 0)
			ret = -EIO;
	} else {
		/* surplus hugepages are freed to buddy */
		if (PageHuge(page)) {
			dequeue_hwpoisoned_huge_page(hpage);
		} else {
			SetPageHWPoison(page);
			num_poisoned_pages_inc();
		}
	}
	return ret;
}
