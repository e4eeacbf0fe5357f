"""Infrastructure every layer uses: the one runner, the cache, scratch, templates, prose, errors."""
