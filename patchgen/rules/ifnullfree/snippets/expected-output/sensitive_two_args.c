/* expect: free=kvfree_sensitive expr=key->data */
static void demo_key_destroy(struct demo_key *key)
{
	if (key->data)
		kvfree_sensitive(key->data, key->len);
}
