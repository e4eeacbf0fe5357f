/* expect: action=report free=kfree */
static void demo_drop(struct demo *d)
{
	if (unlikely(d->extra))
		kfree(d->extra);
}
