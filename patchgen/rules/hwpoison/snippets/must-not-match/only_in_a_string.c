/* expect: none (names in strings and comments are not code) */
static const char *doc = "put_page(page); test_set_page_hwpoison(page);";
/* put_page(page); if (!test_set_page_hwpoison(page)) num_poisoned_pages_inc(); */
static int f(int reason)
{
	return reason == MR_MEMORY_FAILURE;
}
