/* expect: free=kfree expr=rings[i] */
static void demo_rings_free(void **rings, int n)
{
	int i;

	for (i = 0; i < n; i++)
		kfree(rings[i]);
}
