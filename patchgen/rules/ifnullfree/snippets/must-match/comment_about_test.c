/* expect: action=report free=vfree */
static void demo_drop(struct demo *d)
{
	/* only allocated when the table was in use */
	if (d->table)
		vfree(d->table);
}
