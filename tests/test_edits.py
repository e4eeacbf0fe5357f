"""Edits: applying byte-range edits, refusing bad ones, fitting comments."""

import pytest

from patchgen.engine.edits import (Edit, apply_edits, checked_result, columns,
                            fit_comments)
from patchgen.infra.errors import BadRule


def test_edits_apply_in_any_order():
    source = b"abcdef"
    edits = [Edit("f", 4, 5, "E"), Edit("f", 0, 1, "A"), Edit("f", 2, 2, "+")]
    assert apply_edits(source, edits) == b"Ab+cdEf"


def test_overlapping_edits_are_refused():
    with pytest.raises(BadRule, match="overlapping"):
        apply_edits(b"abcdef", [Edit("f", 0, 3, "x"), Edit("f", 2, 4, "y")])


def test_an_edit_past_the_end_is_refused():
    with pytest.raises(BadRule):
        apply_edits(b"abc", [Edit("f", 2, 9, "x")])


def test_an_edit_that_breaks_the_syntax_is_refused():
    source = b"int f(void)\n{\n\treturn 0;\n}\n"
    with pytest.raises(BadRule, match="syntax error"):
        checked_result("f.c", source, [Edit("f.c", 0, 0, "int (;\n")])
    ok = checked_result("f.c", source, [Edit("f.c", 0, 0, "int g;\n")])
    assert ok.startswith(b"int g;\n")


def test_fit_comments_reflows_only_too_wide_comments():
    narrow = "\t/*\n\t * short\n\t */"
    assert fit_comments(narrow) == narrow
    wide = ("\t\t\t/*\n\t\t\t * " + "word " * 20 + "\n\t\t\t *\n\t\t\t * second"
            " paragraph\n\t\t\t */")
    fitted = fit_comments(wide)
    lines = fitted.split("\n")
    assert all(columns(line) <= 80 for line in lines)
    assert lines[0] == "\t\t\t/*" and lines[-1] == "\t\t\t */"
    assert "\t\t\t *" in lines  # the paragraph break survives
    assert " ".join(fitted.split()).count("word") == 20
