"""patchgen: a semantic rewrite of kernel C, made into a verified patch series."""

__version__ = "0.1.0"
