/* expect: shape=related function=unmap_and_move_huge_page page=hpage finder=put-then-poison action=report */
/* v4.14 shape: the hugepage goes back under a label, then is poisoned. */
static int unmap_and_move_huge_page(struct page *hpage, int reason)
{
	int rc = -EAGAIN;

	rc = move_huge(hpage);
	unlock_page(hpage);
out:
	if (rc != -EAGAIN)
		putback_active_hugepage(hpage);
	if (reason == MR_MEMORY_FAILURE && !test_set_page_hwpoison(hpage))
		num_poisoned_pages_inc();

	return rc;
}
