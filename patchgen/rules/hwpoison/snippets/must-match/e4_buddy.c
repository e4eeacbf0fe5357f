/* expect: era=E4 action=none page=page */
static int unmap(struct page *page, int rc, int reason)
{
	if (rc == MIGRATEPAGE_SUCCESS) {
		put_page(page);
		if (reason == MR_MEMORY_FAILURE) {
			if (set_hwpoison_free_buddy_page(page))
				num_poisoned_pages_inc();
		}
	}
	return rc;
}
