"""How patchgen finds its rules (patchgen/engine/registry.py): built-in
subpackages of patchgen.rules and the entry-point group patchgen.rules,
and what a user sees when an installed rule is broken: one sentence that
names the package and the entry point, and an exit code of its own.

The broken packages are real installed distributions as importlib.metadata
reads them (a dist-info folder with entry_points.txt), on PYTHONPATH of a
fresh patchgen process."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from patchgen.cli import main
from patchgen.engine.registry import ENTRY_POINT_GROUP, installed
from patchgen.infra.errors import (BadSnippet, RuleConflict, RuleInvalid, RuleLoadFailed,
                                   UnknownRule)

REPO = Path(__file__).resolve().parent.parent

RULE_MODULE = '''
from patchgen.engine.rule import NO_MATCH, Report, Rule

def scan(source):
    return Report("{id}", source.label, None, NO_MATCH, "nothing", {{}}, ())

RULE = Rule(id="{id}", title="a test rule", default_branch="{id}", scan=scan,
            steps=lambda report: [], templates={templates}, site_words=("x",),
            match=lambda source, name: [])
'''


def install(site: Path, dist: str, entry: str, modules: dict[str, str]) -> None:
    """A distribution *dist* in *site* whose patchgen.rules entry point is *entry*."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry}\n")
    for name, text in modules.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def patchgen(site: Path, *args):
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{REPO}")
    done = subprocess.run([sys.executable, "-m", "patchgen", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def one_sentence(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("patchgen: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_the_built_in_rule_comes_from_its_package():
    item = installed()["hwpoison-put-last"]
    assert item.module == "patchgen.rules.hwpoison" and item.origin == "built in"
    assert item.folder == REPO / "patchgen" / "rules" / "hwpoison"


def test_a_built_in_rule_also_registered_as_an_entry_point_counts_once(tmp_path):
    install(tmp_path, "patchgen-copy", "hwpoison-put-last = patchgen.rules.hwpoison:RULE", {})
    code, out, err = patchgen(tmp_path, "rules")
    assert code == 0, err
    assert out.count("hwpoison-put-last  ") == 1


def test_an_entry_point_that_cannot_be_imported(tmp_path):
    install(tmp_path, "broken-rule", "broken = no_such_module_here:RULE", {})
    for command in (["rules"], ["scan", "--tree", str(tmp_path)]):
        code, out, err = patchgen(tmp_path, *command)
        assert code == RuleLoadFailed.exit_code == 90
        sentence = one_sentence(err)
        assert "the entry point broken = no_such_module_here:RULE of package " \
               "broken-rule (group patchgen.rules) cannot be loaded" in sentence
        assert "ModuleNotFoundError" in sentence and "uninstall that package" in sentence


def test_an_entry_point_that_is_not_a_rule(tmp_path):
    install(tmp_path, "not-a-rule", "odd = odd_rule:RULE", {"odd_rule.py": "RULE = 42\n"})
    code, out, err = patchgen(tmp_path, "rules")
    assert code == RuleLoadFailed.exit_code
    assert "the entry point odd = odd_rule:RULE of package not-a-rule (group " \
           "patchgen.rules) gives int, not a patchgen Rule" in one_sentence(err)


def test_a_rule_whose_templates_do_not_load(tmp_path):
    install(tmp_path, "bad-templates", "bad = bad_rule:RULE", {
        "bad_rule.py": RULE_MODULE.format(id="bad", templates='("bad/none.j2",)')})
    code, out, err = patchgen(tmp_path, "rules")
    assert code == RuleInvalid.exit_code == 91
    sentence = one_sentence(err)
    assert "rule 'bad' from bad_rule (entry point bad, package bad-templates) fails " \
           "its check: template bad/none.j2 cannot be loaded" in sentence


def test_two_packages_with_the_same_rule_id(tmp_path):
    install(tmp_path, "impostor", "hw = impostor_rule:RULE", {
        "impostor_rule.py": RULE_MODULE.format(id="hwpoison-put-last", templates="()")})
    code, out, err = patchgen(tmp_path, "rules")
    assert code == RuleConflict.exit_code == 92
    assert "two installed packages give rule 'hwpoison-put-last': " \
           "patchgen.rules.hwpoison (built in) and impostor_rule (entry point hw, " \
           "package impostor)" in one_sentence(err)


def test_rule_test_of_the_built_in_rule(capsys):
    assert main(["rule-test", "hwpoison-put-last"]) == 0
    out = capsys.readouterr().out
    assert "pass  must-not-match/poison_then_put.c: no site" in out
    assert out.rstrip().endswith("16 of 16 snippets pass")


def test_rule_test_of_an_unknown_rule(capsys):
    assert main(["rule-test", "nope"]) == UnknownRule.exit_code
    assert "there is no rule 'nope'" in one_sentence(capsys.readouterr().err)


def test_snippets_without_an_expect_line(tmp_path):
    install(tmp_path, "no-expect", "plain = plain_rule:RULE", {
        "plain_rule/__init__.py": RULE_MODULE.format(id="plain", templates="()"),
        "plain_rule/snippets/must-match/f.c": "int f(void) { return 0; }\n"})
    code, out, err = patchgen(tmp_path, "rule-test", "plain")
    assert code == BadSnippet.exit_code == 96
    assert "must-match/f.c does not start with its expect line" in one_sentence(err)


def test_a_rule_without_snippets(tmp_path):
    install(tmp_path, "no-snippets", "bare = bare_rule:RULE", {
        "bare_rule/__init__.py": RULE_MODULE.format(id="bare", templates="()")})
    code, out, err = patchgen(tmp_path, "rule-test", "bare")
    assert code == BadSnippet.exit_code
    assert "rule bare has no snippets folder" in one_sentence(err)


@pytest.mark.parametrize("broken, message", [
    ("must-not-match", "expected no site, found 1"),
    ("must-match", "expected one site with name=g, 0 have it (found: name=f)"),
])
def test_a_failing_snippet_is_named(tmp_path, broken, message):
    module = RULE_MODULE.format(id="names", templates="()").replace(
        "match=lambda source, name: []",
        'match=lambda source, name: [{"name": "f"}] if b"f(" in source else []')
    expect = "none (no f)" if broken == "must-not-match" else "name=g"
    install(tmp_path, "names", "names = names_rule:RULE", {
        "names_rule/__init__.py": module,
        f"names_rule/snippets/{broken}/one.c": f"/* expect: {expect} */\nint f(void);\n"})
    code, out, err = patchgen(tmp_path, "rule-test", "names")
    assert code == 95
    assert f"FAIL  {broken}/one.c: {message}" in out


# --- which rules review a series (patchgen check) ------------------------------

PATCH = """\
From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: A Developer <dev@example.org>
Date: Mon, 1 Jan 2024 00:00:00 +0000
Subject: [PATCH] misc: widget: {subject}

{body}
Signed-off-by: A Developer <dev@example.org>
---
 drivers/misc/widget.c | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/drivers/misc/widget.c b/drivers/misc/widget.c
--- a/drivers/misc/widget.c
+++ b/drivers/misc/widget.c
@@ -1,3 +1,3 @@
 void f(void)
-{{ {old} }}
+{{ {new} }}
--
2.39.2
"""


def mail(subject="tidy", body="Tidy it.\n", old="g();", new="h();"):
    from patchgen.series.incoming import parse_mail
    text = PATCH.format(subject=subject, body=body, old=old, new=new)
    return parse_mail(text.encode(), 1, "0001.patch")


def test_check_reviews_with_the_rule_that_made_the_series():
    from patchgen.review.check import reviewers_for
    made = mail(body="Tidy it.\n\nGenerated by: patchgen 0.1.0, rule hwpoison-put-last\n",
                old="x();", new="y();")
    rules, why = reviewers_for([made])
    assert [r.id for r in rules] == ["hwpoison-put-last"] and why == ""


def test_check_reviews_with_the_rules_whose_site_words_the_diff_touches():
    from patchgen.review.check import reviewers_for
    rules, why = reviewers_for([mail(old="put_page(p); SetPageHWPoison(p);",
                                     new="hwpoison_put_last_page(p);")])
    assert [r.id for r in rules] == ["hwpoison-put-last"]
    rules, why = reviewers_for([mail()])
    assert rules == [] and why == "the series touches no rule's site words"


def test_a_series_of_a_rule_without_review_gets_none_of_the_others():
    from patchgen.review.check import reviewers_for
    # Made by a rule that has no review (or is not installed): no other
    # rule's review, even where the diff has their site words.
    made = mail(body="Tidy it.\n\nGenerated by: patchgen 0.1.0, rule elsewhere\n",
                old="put_page(p); SetPageHWPoison(p);", new="x();")
    rules, why = reviewers_for([made])
    assert rules == [] and "elsewhere" in why


def test_demo_with_two_rules_that_ship_a_demo_fixture(tmp_path):
    module = RULE_MODULE.format(id="second", templates="()").replace(
        "match=lambda source, name: []", 'demo_fixture="e2-v4.6"')
    install(tmp_path, "second-demo", "second = second_rule:RULE",
            {"second_rule.py": module})
    code, out, err = patchgen(tmp_path, "demo", "--dir", str(tmp_path / "demo"))
    assert code == 94
    assert "demo needs --rule RULE: 2 installed rules ship a demo fixture " \
           "(hwpoison-put-last, second)" in one_sentence(err)
    assert not (tmp_path / "demo").exists()
