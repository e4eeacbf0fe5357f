"""The ifnullfree rule: its snippets, a fixture tree end to end (several
series, --only, all-or-nothing), and what the tree's proofs say."""

import re
import shutil
from pathlib import Path

import pytest

from patchgen.cli import main
from patchgen.engine.apply import apply_rule
from patchgen.engine.edits import Edit, apply_edits
from patchgen.engine.parse import parse
from patchgen.engine.scan import scan_tree
from patchgen.engine.sources import open_worktree
from patchgen.infra.errors import ApplyFailed, BranchExists
from patchgen.infra.runner import run
from patchgen.rules import NO_MATCH, REWRITE, get_rule
from patchgen.rules.ifnullfree import rule as ifnullfree
from patchgen.rules.ifnullfree.nullsafe import prove

SNIPPETS = Path(ifnullfree.__file__).parent / "snippets"
FIXTURE = Path(__file__).parent / "data" / "ifnullfree-tree"
RULE = get_rule("ifnullfree")


def _expectation(path: Path) -> dict:
    first = path.read_text().splitlines()[0]
    match = re.match(r"/\* expect: (.*?) \*/", first)
    assert match, f"{path.name} has no expect line"
    if match.group(1).startswith("none"):
        return {}
    return dict(item.split("=", 1) for item in match.group(1).split())


def _snippets(kind: str) -> list[Path]:
    return sorted(p for p in (SNIPPETS / kind).glob("*.c")
                  if not p.name.endswith(".expected.c"))


@pytest.mark.parametrize("snippet", _snippets("expected-output"), ids=lambda p: p.stem)
def test_snippet_matches_and_rewrites_as_expected(snippet):
    expected = _expectation(snippet)
    data = snippet.read_bytes()
    sites = ifnullfree.find_sites(parse(data, snippet.name))
    assert len(sites) == 1, [s.reason for s in sites]
    site = sites[0]
    assert (site.action, site.free, site.expression) == \
        ("rewrite", expected["free"], expected["expr"]), site.reason
    result = apply_edits(data, [Edit(snippet.name, site.start, site.end, site.text)])
    assert result == snippet.with_name(snippet.stem + ".expected.c").read_bytes()


@pytest.mark.parametrize("snippet", _snippets("must-match"), ids=lambda p: p.stem)
def test_snippet_is_reported_not_rewritten(snippet):
    expected = _expectation(snippet)
    sites = ifnullfree.find_sites(parse(snippet.read_bytes(), snippet.name))
    assert [(s.action, s.free) for s in sites] == [(expected["action"], expected["free"])]


@pytest.mark.parametrize("snippet", _snippets("must-not-match"), ids=lambda p: p.stem)
def test_snippet_does_not_match(snippet):
    assert _expectation(snippet) == {}
    assert ifnullfree.find_sites(parse(snippet.read_bytes(), snippet.name)) == []


def test_every_snippet_folder_has_snippets():
    assert all(_snippets(kind) for kind in ("expected-output", "must-match", "must-not-match"))


# --- the fixture tree ----------------------------------------------------------

def _git(tree: Path, *args: str) -> str:
    return run(["git", "-C", str(tree), *args]).stdout


@pytest.fixture
def tree(tmp_path):
    """The fixture tree in git, with a history that names drivers/demo/alpha
    "demo-alpha" (twice) and nothing else."""
    root = tmp_path / "linux"
    shutil.copytree(FIXTURE, root)
    _git(root, "init", "-q", "-b", "master")
    _git(root, "config", "user.name", "Test Dev")
    _git(root, "config", "user.email", "dev@example.org")
    alpha = root / "drivers/demo/alpha/alpha_main.c"
    text = alpha.read_text()
    alpha.write_text(text.replace("\tvoid *table;\n", ""))
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "Import the fixture")
    alpha.write_text(text.replace("\tvoid *table;\n", "\tvoid *tbl;\n"))
    _git(root, "commit", "-q", "-am", "demo-alpha: add a table")
    alpha.write_text(text)
    _git(root, "commit", "-q", "-am", "demo-alpha: name the table")
    return root


def test_scan_finds_rewrites_and_reports_the_rest(tree):
    report = scan_tree(tree, "ifnullfree")
    assert report.verdict == REWRITE
    found = {(f.path, f.line, f.action) for f in report.findings}
    assert found == {
        ("drivers/demo/alpha/alpha_main.c", 13, "rewrite"),
        ("drivers/demo/alpha/alpha_main.c", 15, "rewrite"),
        ("drivers/demo/alpha/alpha_main.c", 17, "report"),   # sets regs = NULL too
        ("drivers/demo/alpha/alpha_debug.c", 10, "rewrite"),
        ("drivers/demo/beta/beta.c", 12, "rewrite"),
        ("drivers/demo/beta/beta.c", 14, "report"),          # else branch
        ("fs/demofs/super.c", 11, "rewrite"),
    }
    # One patch per driver, its prefix from history where it has one.
    assert report.steps == (
        "demo-alpha: remove unneeded NULL checks before kfree() and vfree()",
        "demo: beta: remove unneeded NULL check before kfree()",
        "demofs: remove unneeded NULL check before vfree()")


def test_scan_text_has_no_dangling_era_separator(tree, capsys):
    assert main(["scan", "--tree", str(tree), "--rule", "ifnullfree"]) == 0
    out = capsys.readouterr().out
    assert "tree: Linux 6.1\n" in out


def test_only_limits_the_scan(tree):
    report = scan_tree(tree, "ifnullfree", ("drivers/demo/beta/",))
    assert {f.path for f in report.findings} == {"drivers/demo/beta/beta.c"}
    report = scan_tree(tree, "ifnullfree", ("drivers/none/",))
    assert report.verdict == NO_MATCH


def test_only_refuses_a_path_outside_the_tree(tree, capsys):
    code = main(["scan", "--tree", str(tree), "--rule", "ifnullfree",
                 "--only", "../etc"])
    err = capsys.readouterr().err
    assert code != 0 and "not a path inside the tree" in err
    assert "Traceback" not in err


def test_the_proof_is_the_trees_own_code(tree):
    source = open_worktree(tree)
    kfree = prove(source, "kfree")
    assert kfree.path == "mm/slab_common.c"
    assert "if (unlikely(ZERO_OR_NULL_PTR(objp)))" in kfree.sentence()
    assert kfree.doc == "If @objp is NULL, no operation is performed."
    vfree = prove(source, "vfree")
    assert "`if (!addr)`" in vfree.sentence() and vfree.doc is None
    assert prove(source, "kvfree") is None     # mm/util.c is not in the fixture


def test_a_free_function_the_tree_does_not_prove_is_only_reported(tree):
    body = (tree / "mm/vmalloc.c").read_text().replace("\tif (!addr)\n\t\treturn;\n", "")
    (tree / "mm/vmalloc.c").write_text(body)
    report = scan_tree(tree, "ifnullfree")
    vfree = [f for f in report.findings if "vfree()" in f.message]
    assert vfree and all(f.action == "report" for f in vfree)
    assert all("does not show that vfree() accepts NULL" in f.message for f in vfree)


def test_apply_makes_one_branch_per_maintainers_section(tree, capsys):
    head = _git(tree, "rev-parse", "HEAD").strip()
    assert main(["apply", "--tree", str(tree), "--rule", "ifnullfree"]) == 0
    out = capsys.readouterr().out
    branches = sorted(_git(tree, "for-each-ref", "--format=%(refname:short)",
                           "refs/heads/ifnullfree/").split())
    assert branches == ["ifnullfree/demo-alpha-driver", "ifnullfree/demo-beta-driver",
                        "ifnullfree/demofs-file-system"]
    for branch in branches:
        assert f"branch {branch}: 1 commits on {head[:12]}" in out
        assert _git(tree, "rev-list", "--count", f"{head}..{branch}").strip() == "1"
    # The checked-out branch and the working tree are untouched.
    assert _git(tree, "rev-parse", "HEAD").strip() == head
    assert _git(tree, "status", "--porcelain") == ""
    message = _git(tree, "log", "-1", "--format=%B", "ifnullfree/demo-alpha-driver")
    assert message.startswith("demo-alpha: remove unneeded NULL checks before "
                              "kfree() and vfree()\n\n")
    assert "kfree() in mm/slab_common.c returns early when objp is NULL:" in message
    assert "\tif (unlikely(ZERO_OR_NULL_PTR(objp)))" in message
    assert "vfree() in mm/vmalloc.c returns early when addr is NULL:" in message
    assert "Generated by: patchgen " in message and ", rule ifnullfree" in message
    assert message.rstrip().endswith("Signed-off-by: Test Dev <dev@example.org>")
    diff = _git(tree, "diff", head, "ifnullfree/demo-alpha-driver")
    assert "-\tif (dev->name)\n-\t\tkfree(dev->name);\n" in diff
    assert "+\tkfree(dev->name);\n+\tvfree(dev->table);\n" in diff
    assert "-\t\tif (bufs[i])\n-\t\t\tkfree(bufs[i]);\n+\t\tkfree(bufs[i]);" in diff
    assert "-\tif (dev->regs)" not in diff      # reported, not rewritten


def test_steps_use_the_plan_and_do_not_rescan(tree, monkeypatch):
    report = RULE.scan(open_worktree(tree))
    assert isinstance(report.plan, ifnullfree.Plan)
    real = ifnullfree.find_sites
    calls = []
    monkeypatch.setattr(ifnullfree, "find_sites",
                        lambda parsed: calls.append(parsed.path) or real(parsed))
    result = apply_rule(tree, "ifnullfree", dry_run=True)
    assert len(result.patches) == 3
    # apply scans once (at HEAD): each file is searched for sites once,
    # and the steps only cut the plan's byte ranges.
    assert sorted(calls) == sorted(set(calls)) and len(calls) == 4


def test_a_step_refuses_a_file_that_changed_after_the_scan(tree):
    report = RULE.scan(open_worktree(tree))
    (tree / "fs/demofs/super.c").write_text("/* changed */\n")
    step = [s for s in RULE.steps(report) if "demofs" in s.subject][0]
    with pytest.raises(Exception, match="changed between the scan and this step"):
        step.make(open_worktree(tree), report)


def test_a_failure_half_way_leaves_no_branch(tree, monkeypatch):
    from patchgen.engine import commits
    real = commits._commit_all
    made = []

    def fail_on_third(tree_, base, patches, who, env, out):
        if len(made) == 2:
            raise ApplyFailed("the third series failed on purpose")
        made.append(1)
        return real(tree_, base, patches, who, env, out)

    monkeypatch.setattr(commits, "_commit_all", fail_on_third)
    with pytest.raises(ApplyFailed):
        apply_rule(tree, "ifnullfree")
    assert _git(tree, "for-each-ref", "refs/heads/ifnullfree/") == ""


def test_an_existing_branch_stops_every_series(tree):
    _git(tree, "branch", "ifnullfree/demofs-file-system")
    with pytest.raises(BranchExists):
        apply_rule(tree, "ifnullfree")
    assert _git(tree, "for-each-ref", "--format=%(refname)",
                "refs/heads/ifnullfree/").split() == \
        ["refs/heads/ifnullfree/demofs-file-system"]


def test_a_series_holds_at_most_fifteen_patches(tree):
    beta = tree / "drivers/demo/beta"
    for number in range(17):
        folder = beta / f"sub{number:02d}"
        folder.mkdir()
        (folder / "part.c").write_text(
            "static void part_free(char *p)\n{\n\tif (p)\n\t\tkfree(p);\n}\n")
    report = RULE.scan(open_worktree(tree))
    parts = RULE.split(report)
    beta_parts = [p for p in parts if p.title == "DEMO BETA DRIVER"]
    assert [len(p.steps) for p in beta_parts] == [15, 3]
    assert [p.key for p in beta_parts] == ["demo-beta-driver-1", "demo-beta-driver-2"]


# --- the real 6.1 tree, side by side with the kernel's own Coccinelle script ------

# A few folders that hold a dozen spatch sites between them (spatch takes
# 4-10 s a folder here; the whole tree is benchmarks/bench_ifnullfree.py).
REAL_DIRS = ("io_uring/", "fs/ext4/", "fs/nfs/", "net/bluetooth/", "drivers/block/")
COCCI = "scripts/coccinelle/free/ifnullfree.cocci"
# What patchgen finds and spatch does not, site by site, and why (checked
# with spatch 1.1.1 on Linux 6.1).
MORE_THAN_SPATCH = {
    ("drivers/block/z2ram.c", 405):
        "the body is braced, `{ kfree(z2ram_map); }`: the SmPL `if (E != NULL) "
        "kfree(E);` does not match a braced body",
}
# Sites patchgen reports by design though spatch does not look at them.
BEYOND_SPATCH = ("has an else branch", "does more than", "branch hint")


def spatch_sites(tree: Path, folders) -> set[tuple[str, int]]:
    from tests.conftest import need_tool
    need_tool("spatch")
    found = set()
    for folder in folders:
        result = run(["spatch", "--very-quiet", "-D", "report", "--no-includes",
                      "--include-headers", "--cocci-file", str(tree / COCCI),
                      "--dir", str(tree / folder)], timeout=1800, check=False)
        for line in result.stdout.splitlines():
            match = re.match(r"(.+?):(\d+):\d+-\d+: WARNING", line)
            if match:
                found.add((str(Path(match.group(1)).relative_to(tree)),
                           int(match.group(2))))
    return found


@pytest.mark.realtree
def test_real_tree_finds_every_site_spatch_finds(linux61):
    expected = spatch_sites(linux61, REAL_DIRS)
    assert len(expected) >= 10
    report = scan_tree(linux61, "ifnullfree", REAL_DIRS)
    ours = {(s.path, s.call_line): s for s in report.plan.sites}
    assert expected <= set(ours), expected - set(ours)
    extra = {key for key, site in ours.items() if key not in expected
             and not any(why in site.reason for why in BEYOND_SPATCH)}
    assert extra == set(MORE_THAN_SPATCH)
    # What spatch finds and patchgen only reports has a reason a reviewer
    # would give: a comment that says the test is a fast path, side effects.
    for key in expected:
        site = ours[key]
        if site.action == "report":
            assert "comment" in site.reason or "side effects" in site.reason, site


@pytest.mark.realtree
def test_real_tree_patches_are_checkpatch_clean(linux61, tmp_path):
    from patchgen.kernel.checkpatch import run_checkpatch
    clone = tmp_path / "linux"
    run(["git", "clone", "-q", "--shared", str(linux61), str(clone)], timeout=600)
    _git(clone, "config", "user.name", "Test Dev")
    _git(clone, "config", "user.email", "dev@example.org")
    result = apply_rule(clone, "ifnullfree", only=REAL_DIRS)
    assert len(result.all_series) >= 3
    for series in result.all_series:
        out = tmp_path / "patches" / series.branch.replace("/", "_")
        _git(clone, "format-patch", "-q", "-o", str(out),
             f"{series.base}..{series.branch}")
        for patch in sorted(out.glob("*.patch")):
            checked = run_checkpatch(clone, patch, cwd=clone)
            assert checked.errors == 0 and checked.warnings == 0, \
                (patch.name, checked.summary(), patch.read_text()[:3000])


# Folders x86_64 defconfig builds (CONFIG_IO_URING, EXT4_FS, NFS_FS =y).
BUILT_DIRS = ("io_uring/", "fs/ext4/", "fs/nfs/")


@pytest.mark.realtree
@pytest.mark.slow
def test_real_tree_patches_build_their_files(linux61, tmp_path):
    """Each patch compiles the files it changes: `make O=... path/file.o`
    on x86_64 defconfig, with the tree checked out at that patch."""
    from tests.conftest import need_tool
    need_tool("gcc")
    need_tool("make")
    clone = tmp_path / "linux"
    build = tmp_path / "build"
    run(["git", "clone", "-q", "--shared", str(linux61), str(clone)], timeout=600)
    _git(clone, "config", "user.name", "Test Dev")
    _git(clone, "config", "user.email", "dev@example.org")
    result = apply_rule(clone, "ifnullfree", only=BUILT_DIRS)
    assert result.all_series
    run(["make", f"O={build}", "defconfig"], cwd=clone, timeout=600)
    run(["make", f"O={build}", "-j2", "prepare"], cwd=clone, timeout=1800)
    built = 0
    for series in result.all_series:
        for commit in series.commits:
            _git(clone, "checkout", "-q", commit.sha)
            changed = _git(clone, "diff", "--name-only", f"{commit.sha}~1",
                           commit.sha).split()
            for path in changed:
                target = path[:-2] + ".o"
                done = run(["make", f"O={build}", target], cwd=clone,
                           timeout=1800, check=False)
                assert done.returncode == 0, (commit.subject, target,
                                              done.stdout[-2000:], done.stderr[-2000:])
                built += 1
    assert built >= 4
