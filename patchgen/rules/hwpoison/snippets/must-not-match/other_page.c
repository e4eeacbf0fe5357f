/* expect: none (the poisoned page is not the one that was put) */
static int unmap(struct page *page, struct page *newpage, int rc, int reason)
{
	if (rc == MIGRATEPAGE_SUCCESS) {
		put_page(newpage);
		if (reason == MR_MEMORY_FAILURE) {
			if (!test_set_page_hwpoison(page))
				num_poisoned_pages_inc();
		}
	}
	return rc;
}
