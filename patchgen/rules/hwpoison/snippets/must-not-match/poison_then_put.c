/* expect: none (poisoning before the put is page_handle_poison()'s order) */
static bool handle(struct page *page, bool release)
{
	SetPageHWPoison(page);
	if (release)
		put_page(page);
	page_ref_inc(page);
	return true;
}
