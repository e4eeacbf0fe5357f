/* expect: none */
static void demo_drop(struct demo *d)
{
	if (!d->buf)
		kfree(d->buf);
}
