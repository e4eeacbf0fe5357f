/* expect: free=vfree expr=table */
static void demo_table_free(void *table)
{
	vfree(table);
}
