/* expect: free=kvfree expr=ctx->pages[0] */
static void demo_pages_free(struct demo_ctx *ctx)
{
	if (NULL != ctx->pages[0])
		kvfree(ctx->pages[0]);
}
