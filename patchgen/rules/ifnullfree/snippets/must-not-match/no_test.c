/* expect: none */
static void demo_drop(struct demo *d)
{
	kfree(d->buf);
}
