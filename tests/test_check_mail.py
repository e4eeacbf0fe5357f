"""Reading one mail the way git am does, and the checks of one mail."""

from checkhelp import git
from patchgen.review.mail import (check_body_width, check_diff, check_fixes,
                                 check_signoff, check_subject, parse_diffstat)
from patchgen.series.incoming import parse_mail, parse_subject


def test_subject_prefixes():
    tags = parse_subject("[RFC PATCH v2 3/7] mm/migrate: do a thing")
    assert (tags.is_patch, tags.version, tags.number, tags.total, tags.summary) == \
        (True, 2, 3, 7, "mm/migrate: do a thing")
    tags = parse_subject("[PATCH] mm: one patch")
    assert (tags.version, tags.number, tags.summary) == (1, None, "mm: one patch")
    assert not parse_subject("Re: mm: a reply").is_patch


def mail_with(body: str, diff: str = "", subject="[PATCH 1/1] mm: fix it",
              sender="Ann Author <ann@example.org>") -> bytes:
    return (f"From: {sender}\nSubject: {subject}\nMessage-Id: <1@example.org>\n\n"
            f"{body}\n---\n{diff}").encode()


def test_a_mail_from_someone_else_on_behalf_of_the_author(tmp_path):
    """An in-body From: names the author, as git am reads it."""
    raw = mail_with("From: Bob Coder <bob@example.org>\n\nThe fix.\n\n"
                    "Signed-off-by: Bob Coder <bob@example.org>\n"
                    "Signed-off-by: Ann Author <ann@example.org>")
    mail = parse_mail(raw, 1, "x.patch")
    assert mail.author == "Bob Coder <bob@example.org>"
    assert check_signoff(mail).state == "pass"
    raw = mail_with("The fix.\n\nSigned-off-by: Bob Coder <bob@example.org>")
    result = check_signoff(parse_mail(raw, 1, "x.patch"))
    assert result.state == "fail"
    assert result.reason == ("no Signed-off-by: matches the author Ann Author "
                             "<ann@example.org> (found: Bob Coder <bob@example.org>)")


def test_a_sentence_that_starts_with_fixes_is_not_a_tag():
    raw = mail_with("Fixes the race between a and b, which\nbroke c.\n\n"
                    "Signed-off-by: Ann Author <ann@example.org>")
    mail = parse_mail(raw, 1, "x.patch")
    assert check_fixes(mail, lambda _id: None, "t").reason == "no Fixes: tag"
    raw = mail_with("The fix.\n\nFixes: 0123456 (\"mm: short id\")\n"
                    "Signed-off-by: Ann Author <ann@example.org>")
    result = check_fixes(parse_mail(raw, 1, "x.patch"), lambda _id: None, "t")
    assert result.state == "fail" and "is not `Fixes: <12+ hex>" in result.reason


def test_tags_and_urls_may_be_long():
    link = "Link: https://lore.kernel.org/r/" + "x" * 80
    url = "https://example.org/" + "y" * 80
    raw = mail_with(f"Short.\n\n{url}\n\n{link}\nSigned-off-by: Ann Author <ann@example.org>")
    assert check_body_width(parse_mail(raw, 1, "x.patch")).state == "pass"


def test_diffstat_and_diff_must_agree(tmp_path):
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    (repo / "a.c").write_text("".join(f"int a{n};\n" for n in range(10)))
    git(repo, "add", ".")
    git(repo, "-c", "user.name=A", "-c", "user.email=a@b", "commit", "-qm", "a")
    (repo / "a.c").write_text("".join(f"int a{n};\n" for n in range(10) if n != 4)
                              + "int b;\n")
    git(repo, "-c", "user.name=A", "-c", "user.email=a@b", "commit", "-qam",
        "mm: change a\n\nChange a.\n\nSigned-off-by: A <a@b>")
    raw = git(repo, "format-patch", "--stdout", "-1").encode()
    mail = parse_mail(raw, 1, "p.patch")
    assert check_diff(mail).reason == "1 file, 1 hunk, +1/-1, as the diffstat says"
    assert b" a.c | 2 +-\n" in raw
    lied = parse_mail(raw.replace(b" a.c | 2 +-", b" a.c | 5 +-"), 1, "p.patch")
    assert check_diff(lied).reason == "a.c: the diffstat says 5 changed lines, the diff has 2"
    files, total = parse_diffstat(" .../very/long/path/file.c | 3 ++-\n"
                                  " 1 file changed, 2 insertions(+), 1 deletion(-)\n")
    assert files == {".../very/long/path/file.c": 3} and total == (1, 2, 1)


def test_subject_without_a_subsystem_prefix():
    raw = mail_with("Body.\n\nSigned-off-by: Ann Author <ann@example.org>",
                    subject="[PATCH] Fix the bug")
    mail = parse_mail(raw, 1, "x.patch")
    assert check_subject(mail, (mail,)).reason.startswith("no subsystem prefix")
