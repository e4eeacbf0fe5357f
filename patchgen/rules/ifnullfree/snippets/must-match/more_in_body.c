/* expect: action=report free=kfree */
static void demo_drop(struct demo *d)
{
	if (d->name) {
		kfree(d->name);
		d->name = NULL;
	}
}
