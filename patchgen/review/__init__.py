"""`patchgen check`: a reviewer's checks on any series."""
