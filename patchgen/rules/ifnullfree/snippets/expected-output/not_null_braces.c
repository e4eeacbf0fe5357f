/* expect: free=vfree expr=table */
static void demo_table_free(void *table)
{
	if (table != NULL) {
		vfree(table);
	}
}
