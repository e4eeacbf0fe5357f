/* expect: free=kfree expr=priv->buf */
static void demo_release(struct demo_priv *priv)
{
	if (priv->buf)
		kfree(priv->buf);
	priv->len = 0;
}
