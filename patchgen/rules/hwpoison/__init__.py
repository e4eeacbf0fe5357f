"""The hwpoison-put-last rule: poison a page only when the last reference went."""

from patchgen.rules.hwpoison.rule import RULE

__all__ = ["RULE"]
