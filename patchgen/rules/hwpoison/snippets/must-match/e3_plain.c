/* expect: era=E3 action=rewrite page=page */
static ICE_noinline int unmap_and_move(struct page *page, int rc, int reason)
{
	if (rc == MIGRATEPAGE_SUCCESS) {
		put_page(page);
		if (reason == MR_MEMORY_FAILURE) {
			/* poisoning a page we may just have freed */
			if (!test_set_page_hwpoison(page))
				num_poisoned_pages_inc();
		}
	} else {
		list_for_each_entry(p, q, lru) {
			retry(p);
		}
	}
	return rc;
}
