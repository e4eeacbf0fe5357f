/* expect: era=E1 action=refuse page=page */
static int unmap(struct page *page, int rc, int reason)
{
	if (rc != -EAGAIN) {
		if (reason == MR_MEMORY_FAILURE) {
			put_page(page);
			if (!test_set_page_hwpoison(page))
				num_poisoned_pages_inc();
		} else
			putback_lru_page(page);
	}
	return rc;
}
