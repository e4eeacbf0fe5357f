"""A rule in its own package (tests/data/thirdparty-rule/, kzalloc-kcalloc),
installed with pip, is found through the entry-point group patchgen.rules
and runs end to end with no change to patchgen: rules, rule-test, scan,
apply, format and check, in fresh processes as a user would run them.

The tree is a small one in the kernel's shape written here; format and
check borrow the real 6.1 tree's checkpatch.pl and get_maintainer.pl.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from patchgen.infra.errors import RuleRequired, SnippetsFailed

pytestmark = pytest.mark.realtree

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "tests" / "data" / "thirdparty-rule"
RULE_ID = "kzalloc-kcalloc"

WIDGET_C = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/slab.h>

struct widget {
	int id;
};

struct widget *widgets_alloc(unsigned int count)
{
	return kzalloc(count * sizeof(struct widget), GFP_KERNEL);
}
"""

GADGET_C = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/slab.h>

struct gadget {
	long *slots;
};

int gadget_init(struct gadget *g, int n)
{
	g->slots = kzalloc(sizeof(*g->slots) * n, GFP_KERNEL);
	if (!g->slots)
		return -ENOMEM;
	return 0;
}

void *gadget_one(void)
{
	return kzalloc(sizeof(struct gadget), GFP_KERNEL);
}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The rule package installed with pip into a folder of its own."""
    work = tmp_path_factory.mktemp("thirdparty")
    source = work / "src"
    shutil.copytree(PACKAGE, source)   # the build writes build/ and egg-info there
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(source)],
                   check=True, capture_output=True, text=True)
    assert (target / "patchgen_rule_kcalloc" / "__init__.py").is_file()
    return target


def patchgen(site: Path, *args, cwd=None):
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{REPO}")
    done = subprocess.run([sys.executable, "-m", "patchgen", *map(str, args)],
                          cwd=cwd or REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    return done.returncode, done.stdout, done.stderr


def git(tree, *args) -> str:
    return subprocess.run(["git", "-C", str(tree), *args], check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture
def tree(tmp_path):
    top = tmp_path / "linux"
    (top / "drivers" / "misc").mkdir(parents=True)
    (top / "include" / "linux").mkdir(parents=True)
    (top / "Makefile").write_text("# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\n"
                                  "PATCHLEVEL = 1\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    (top / "drivers" / "misc" / "widget.c").write_text(WIDGET_C)
    (top / "drivers" / "misc" / "gadget.c").write_text(GADGET_C)
    git(tmp_path, "init", "-q", "-b", "master", str(top))
    git(top, "config", "user.name", "Test Developer")
    git(top, "config", "user.email", "dev@example.org")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "initial")
    return top


def test_the_installed_rule_is_listed_with_its_package(site):
    code, out, err = patchgen(site, "rules")
    assert code == 0, err
    assert f"{RULE_ID}    allocate arrays with kcalloc(n, size), not kzalloc(n * size)" in out
    assert "from patchgen_rule_kcalloc (entry point kzalloc-kcalloc, package " \
           "patchgen-rule-kcalloc)" in out
    assert "from patchgen.rules.hwpoison (built in)" in out
    # Without the package on the path, the rule is not there.
    code, out, err = patchgen(site.parent / "nothing-here", "rules")
    assert code == 0 and RULE_ID not in out


def test_its_snippets_pass_through_rule_test(site):
    code, out, err = patchgen(site, "rule-test", RULE_ID)
    assert code == 0, out + err
    assert "pass  expected-output/array.c: rewritten to array.expected.c" in out
    assert "pass  must-not-match/two_sizeofs.c: no site" in out
    assert out.rstrip().endswith("6 of 6 snippets pass")


def test_a_wrong_expected_output_fails_rule_test(site, tmp_path):
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    expected = broken / "patchgen_rule_kcalloc" / "snippets" / "expected-output" / \
        "array.expected.c"
    expected.write_text(expected.read_text().replace("kcalloc(n,", "kcalloc(n + 1,"))
    code, out, err = patchgen(broken, "rule-test", RULE_ID)
    assert code == SnippetsFailed.exit_code == 95
    assert "FAIL  expected-output/array.c: line 3 is" in out
    assert "5 of 6 snippets pass" in out
    assert err.count("\n") == 1 and "1 of 6 snippets of rule kzalloc-kcalloc fail" in err


def test_scan_apply_format_check(site, tree, tmp_path, linux61):
    code, out, err = patchgen(site, "scan", "--tree", tree, "--rule", RULE_ID)
    assert code == 0, err
    assert "tree: Linux 6.1\n" in out                  # no facts: no separator
    assert "drivers/misc/gadget.c:10: gadget_init(): kzalloc-product, rewrite" in out
    assert "drivers/misc/widget.c:10: widgets_alloc(): kzalloc-product, rewrite" in out
    assert "gadget_one" not in out
    # Every rule: hwpoison-put-last cannot read a tree without mm/ and says
    # so, the others report (ifnullfree: no site here), this one as alone.
    code, every, err = patchgen(site, "scan", "--tree", tree)
    assert code == 0, err
    reports = every.split("\n\n" + "patchgen scan")
    assert out.rstrip("\n") in every and "(rule ifnullfree)" in every
    assert len(reports) == 2
    assert "rule hwpoison-put-last skipped:" in err and "no mm/ folder" in err

    code, out, err = patchgen(site, "apply", "--tree", tree)
    assert code == RuleRequired.exit_code == 94
    assert "apply needs --rule RULE: 3 rules are installed (hwpoison-put-last, " \
           "ifnullfree, kzalloc-kcalloc)" in err
    code, out, err = patchgen(site, "apply", "--tree", tree, "--rule", RULE_ID)
    assert code == 0, err
    subjects = git(tree, "log", "--reverse", "--format=%s", f"master..{RULE_ID}").split("\n")
    assert subjects[:2] == ["misc: gadget: use kcalloc() for an array allocation",
                            "misc: widget: use kcalloc() for an array allocation"]
    assert "kcalloc(count, sizeof(struct widget), GFP_KERNEL)" in \
        git(tree, "show", f"{RULE_ID}:drivers/misc/widget.c")
    assert "Generated by: patchgen 0.1.0, rule kzalloc-kcalloc" in \
        git(tree, "log", "-1", "--format=%b", RULE_ID)

    series = tmp_path / "series"
    code, out, err = patchgen(site, "format", "--tree", tree, "-o", series,
                              "--scripts-from", linux61, cwd=tree)
    assert code == 0, out + err
    folder = series / RULE_ID / "v1"
    patches = sorted(p.name for p in folder.glob("*.patch"))
    assert patches == ["0000-cover-letter.patch",
                       "0001-misc-gadget-use-kcalloc-for-an-array-allocation.patch",
                       "0002-misc-widget-use-kcalloc-for-an-array-allocation.patch"]
    assert "checkpatch: 0 errors, 0 warnings, 0 checks" in out

    code, out, err = patchgen(site, "check", folder, "--tree", tree, "--checkpatch",
                              Path(linux61) / "scripts" / "checkpatch.pl")
    assert code == 0, out + err
    assert "no check failed" in out
    semantic = [line for line in out.splitlines() if " semantic " in line]
    assert len(semantic) == 3
    # The review of the rule that made the series, and of no other rule.
    assert all("kzalloc-kcalloc:" in line and "hwpoison" not in line for line in semantic)
    assert "resolves kzalloc-product at drivers/misc/widget.c:10: widgets_alloc()" in out
