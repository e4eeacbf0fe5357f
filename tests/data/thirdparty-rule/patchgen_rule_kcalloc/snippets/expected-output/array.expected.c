static int probe(struct dev *d, int n)
{
	d->items = kcalloc(n, sizeof(*d->items), GFP_KERNEL);
	return d->items ? 0 : -ENOMEM;
}
