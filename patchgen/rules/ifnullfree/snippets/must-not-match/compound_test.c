/* expect: none */
static void demo_drop(struct demo *d)
{
	if (d->buf && d->owned)
		kfree(d->buf);
}
