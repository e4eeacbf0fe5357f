/* expect: shape=invalidate function=__soft_offline_page page=page finder=put-then-poison action=rewrite */
/* The invalidate path of soft offline: put, then set the flag. */
static int __soft_offline_page(struct page *page, int flags)
{
	int ret;
	unsigned long pfn = page_to_pfn(page);

	ret = invalidate_inode_page(page);
	unlock_page(page);
	if (ret == 1) {
		put_hwpoison_page(page);
		pr_info("soft_offline: %#lx: invalidated\n", pfn);
		SetPageHWPoison(page);
		num_poisoned_pages_inc();
		return 0;
	}
	return ret;
}
