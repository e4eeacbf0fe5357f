"""Commit-message wrapping: paragraphs reflowed, tags and code kept."""

from patchgen.infra.prose import wrap_message


def test_paragraphs_are_wrapped_and_tags_kept():
    long_tag = "Link: https://lore.kernel.org/r/" + "x" * 80
    message = ("subject: one line\n\n" + "word " * 40 + "\n\n"
               "\tcode line that is kept exactly as it is, however long it happens to be\n\n"
               + long_tag + "\nSigned-off-by: A <a@b.c>\n")
    wrapped = wrap_message(message)
    lines = wrapped.splitlines()
    assert lines[0] == "subject: one line"
    body = [l for l in lines[1:] if l and not l.startswith("\t")
            and not l.startswith(("Link:", "Signed-off-by:"))]
    assert body and all(len(l) <= 72 for l in body)
    assert long_tag in lines
    assert "\tcode line that is kept exactly as it is, however long it happens to be" in lines
    assert wrapped.endswith("Signed-off-by: A <a@b.c>\n")


def test_wrapping_is_idempotent():
    message = "s\n\n" + "alpha beta gamma " * 30 + "\n\n- item " + "delta " * 20 + "\n"
    once = wrap_message(message)
    assert wrap_message(once) == once
