/* expect: era=E3 action=rewrite page=src */
static int move_src(struct page *src, int rc, int reason)
{
	if (rc == MIGRATEPAGE_SUCCESS) {
		put_page(src);
		/*
		 * A comment between the put and the poisoning
		 */
		if (reason == MR_MEMORY_FAILURE)
			if (!test_set_page_hwpoison(src))
				num_poisoned_pages_inc();
	}
	return rc;
}
