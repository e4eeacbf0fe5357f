// SPDX-License-Identifier: GPL-2.0
/* The beta demo driver (a fixture for patchgen's ifnullfree rule). */
#include <linux/slab.h>

struct beta_priv {
	char *fw;
	char *log;
};

static void beta_remove(struct beta_priv *priv)
{
	if (priv->fw)
		kfree(priv->fw);
	if (priv->log)
		kfree(priv->log);
	else
		beta_warn(priv);
}
