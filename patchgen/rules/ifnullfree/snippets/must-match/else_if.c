/* expect: action=report free=kfree */
static void demo_drop(struct demo *d, int mode)
{
	if (mode)
		demo_keep(d);
	else if (d->extra)
		kfree(d->extra);
}
