/* expect: era=E3 action=rewrite page=hpage */
static int move_one(struct page *hpage, int rc, enum migrate_reason why)
{
	if ( MIGRATEPAGE_SUCCESS == rc )
	{
		put_page( hpage ) ;
		if (why == MR_MEMORY_FAILURE)
		{
			if (!TestSetPageHWPoison(hpage))   /* already set? */
				num_poisoned_pages_inc();
		}
	}
	return rc;
}
