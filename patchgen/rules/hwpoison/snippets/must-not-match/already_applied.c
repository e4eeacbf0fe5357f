/* expect: none (the helper is already used) */
static int unmap(struct page *page, int rc, int reason)
{
	if (rc == MIGRATEPAGE_SUCCESS) {
		if (reason == MR_MEMORY_FAILURE)
			hwpoison_put_last_page(page);
		else
			put_page(page);
	}
	return rc;
}
