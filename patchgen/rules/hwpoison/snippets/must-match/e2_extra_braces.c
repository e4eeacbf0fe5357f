/* expect: era=E2 action=rewrite page=page */
static int unmap(struct page *page, int rc, int reason)
{
	if (rc != -EAGAIN) {
		list_del(&page->lru);
		if (reason == MR_MEMORY_FAILURE &&
		    (rc == MIGRATEPAGE_SUCCESS)) {
			{
				put_page(page);
				if (!test_set_page_hwpoison(page)) {
					num_poisoned_pages_inc();
				}
			}
		} else
			putback_lru_page(page);
	}
	return rc;
}
