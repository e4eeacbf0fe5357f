"""A fixed git identity and date, for repositories patchgen makes itself
(fixture trees, imported tarballs) so that their commit ids are stable."""

FIXED_IDENTITY = {
    "GIT_AUTHOR_NAME": "Fixture Author",
    "GIT_AUTHOR_EMAIL": "fixture@example.org",
    "GIT_COMMITTER_NAME": "Fixture Author",
    "GIT_COMMITTER_EMAIL": "fixture@example.org",
    "GIT_AUTHOR_DATE": "2016-04-06T12:00:00+00:00",
    "GIT_COMMITTER_DATE": "2016-04-06T12:00:00+00:00",
}
