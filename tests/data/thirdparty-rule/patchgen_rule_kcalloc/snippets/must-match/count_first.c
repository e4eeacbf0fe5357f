/* expect: function=probe count=n size=sizeof(*p) action=rewrite */
static int probe(int n)
{
	struct item *p = kzalloc(n * sizeof(*p), GFP_KERNEL);

	return p ? 0 : -ENOMEM;
}
