static void *one(void)
{
	return kzalloc(sizeof(struct item), GFP_KERNEL);
}
