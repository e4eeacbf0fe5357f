/* expect: none (the flow leaves the block between the put and the poisoning) */
static int unmap(struct page *page, int rc, int reason)
{
	if (rc == MIGRATEPAGE_SUCCESS) {
		put_page(page);
		return rc;
		if (!test_set_page_hwpoison(page))
			num_poisoned_pages_inc();
	}
	return rc;
}
