"""A series as mail: select the commits, format them, recipients, versions, what arrives."""
