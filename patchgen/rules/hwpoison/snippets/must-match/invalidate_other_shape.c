/* expect: shape=invalidate function=__soft_offline_page page=page finder=put-then-poison action=report */
/* The invalidate path with work between put and poison: reported only. */
static int __soft_offline_page(struct page *page, int flags)
{
	int ret;

	ret = invalidate_inode_page(page);
	if (ret == 1) {
		put_hwpoison_page(page);
		count_offlined(page);
		SetPageHWPoison(page);
		num_poisoned_pages_inc();
		return 0;
	}
	return ret;
}
