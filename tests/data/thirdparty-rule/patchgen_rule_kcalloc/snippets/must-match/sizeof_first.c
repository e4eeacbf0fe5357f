/* expect: function=setup count=count size="sizeof(struct item)" */
static void *setup(unsigned int count)
{
	return kzalloc(sizeof(struct item) * count, GFP_KERNEL);
}
