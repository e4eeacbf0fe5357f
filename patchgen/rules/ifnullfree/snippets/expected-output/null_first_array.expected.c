/* expect: free=kvfree expr=ctx->pages[0] */
static void demo_pages_free(struct demo_ctx *ctx)
{
	kvfree(ctx->pages[0]);
}
