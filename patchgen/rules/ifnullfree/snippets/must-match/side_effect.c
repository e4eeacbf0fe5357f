/* expect: action=report free=kfree */
static void demo_drop(struct demo *d)
{
	if (demo_next(d))
		kfree(demo_next(d));
}
