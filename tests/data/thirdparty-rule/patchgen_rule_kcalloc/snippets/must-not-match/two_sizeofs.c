/* expect: none (no count: both factors are sizes) */
static void *odd(void)
{
	return kzalloc(sizeof(long) * sizeof(int), GFP_KERNEL);
}
