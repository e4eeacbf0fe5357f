"""The engine: read a tree, parse it, rewrite it through a rule, commit a series."""
