/* expect: era=E2 action=rewrite page=pg */
static int unmap(struct page *pg, int rc, int reason)
{
	if (rc == MIGRATEPAGE_SUCCESS && MR_MEMORY_FAILURE == reason) {
		put_page(pg); if (!TestSetPageHWPoison(pg)) num_poisoned_pages_inc();
	} else
		putback_lru_page(pg);
	return rc;
}
