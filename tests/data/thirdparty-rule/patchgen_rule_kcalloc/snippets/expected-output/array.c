static int probe(struct dev *d, int n)
{
	d->items = kzalloc(n * sizeof(*d->items), GFP_KERNEL);
	return d->items ? 0 : -ENOMEM;
}
