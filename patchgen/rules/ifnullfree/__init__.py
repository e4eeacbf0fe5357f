"""The ifnullfree rule: `if (p) kfree(p);` -> `kfree(p);`."""

from patchgen.rules.ifnullfree.rule import RULE

__all__ = ["RULE"]
