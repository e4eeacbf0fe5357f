"""The tree-sitter layer: functions behind macro headers, errors, helpers."""

from patchgen.engine.parse import (call_args, call_name, calls, compares, conjuncts,
                            count_errors, find_function, functions, normalized,
                            parse, statements)

ICE = b"""
static ICE_noinline int unmap_and_move(struct page *page, int rc)
{
	put_page(page);
	return rc;
}

int tidy(int a)
{
	return a;
}
"""


def test_function_with_macro_header_is_found_and_its_body_is_clean():
    parsed = parse(ICE)
    by_name = {f.name: f for f in functions(parsed)}
    assert set(by_name) == {"unmap_and_move", "tidy"}
    assert by_name["unmap_and_move"].header_clean is False
    assert by_name["unmap_and_move"].body.has_error is False
    assert by_name["tidy"].header_clean is True
    assert count_errors(parsed.root) >= 1


def test_calls_and_arguments_are_normalised():
    parsed = parse(b"void f(void) { put_page( page /* x */ ); g(a->b, &c); }")
    names = [call_name(c) for c in calls(parsed.root)]
    assert names == ["put_page", "g"]
    put = next(calls(parsed.root, {"put_page"}))
    assert normalized(call_args(put)[0]) == "page"
    g = next(calls(parsed.root, {"g"}))
    assert [normalized(a) for a in call_args(g)] == ["a->b", "&c"]


def test_conjuncts_and_comparisons_ignore_parentheses_and_order():
    parsed = parse(b"void f(void) { if ((a == B) && (C == d && e)) x(); }")
    function = find_function(parsed, "f")
    statement = statements(function.body)[0]
    terms = conjuncts(statement.child_by_field_name("condition"))
    assert [normalized(t) for t in terms] == ["a==B", "C==d", "e"]
    assert compares(terms[0], "B")
    assert compares(terms[1], "C")
    assert not compares(terms[0], "B", "!=")
    assert not compares(terms[2], "e")


def test_line_and_indent_helpers():
    parsed = parse(b"int f(void)\n{\n\t\treturn 1;\n}\n")
    body = find_function(parsed, "f").body
    statement = statements(body)[0]
    assert parsed.line(statement) == 3
    assert parsed.indent_of(statement) == "\t\t"
