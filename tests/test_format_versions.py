"""Versions: -v 2 keeps the cover text and the change-id, says what changed
(from the real git range-diff) and links v1; v1's commits are rebuilt
from its files when the repository no longer has them."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from formatkit import (applied_fixture, cover_file, fix_dates, git, patch_files,
                       run_cli)
from patchgen.engine.sources import open_git_tree
from patchgen.series.versions import parse_range_diff, range_diff

TOPIC = "hwpoison-put-last"


def fmt(capsys, tree, out, *extra):
    code, stdout, stderr = run_cli(capsys, "format", "--tree", tree, "-o", out,
                                   "--no-checkpatch", *extra)
    assert code == 0, stderr
    return stdout, stderr


def rework_branch(tree: Path) -> None:
    """What a developer does between v1 and v2: reword and change patch 4,
    the helper (keeping the rest of its message), add a patch at the end."""
    git(tree, "checkout", "-q", "-b", "rework", f"{TOPIC}~3")
    message = git(tree, "log", "-1", "--format=%B")
    subject, rest = message.split("\n", 1)
    (tree / "mm" / "memory-failure.c").write_text(
        (tree / "mm" / "memory-failure.c").read_text() + "/* reworked */\n")
    git(tree, "commit", "-q", "-a", "--amend", "-F", "-",
        input=f"{subject} for soft offline\n{rest}")
    git(tree, "cherry-pick", f"{TOPIC}~2", f"{TOPIC}~1", f"{TOPIC}")
    (tree / "mm" / "migrate.c").write_text(
        (tree / "mm" / "migrate.c").read_text() + "/* follow-up */\n")
    git(tree, "commit", "-q", "-a", "-m", "mm/migrate: a follow-up",
        "-m", "Signed-off-by: Fixture Author <fixture@example.org>")
    git(tree, "branch", "-q", "-f", TOPIC, "rework")
    git(tree, "checkout", "-q", "master")
    git(tree, "branch", "-q", "-D", "rework")


@pytest.fixture
def v1(tmp_path, capsys, monkeypatch):
    fix_dates(monkeypatch)
    tree = applied_fixture("e3-v4.14", tmp_path / "e3")
    out = tmp_path / "series"
    fmt(capsys, tree, out)
    return tree, out


def subject_of(mail: str) -> str:
    """The Subject header, unfolded (a long one spans two lines)."""
    import email
    return " ".join(email.message_from_string(mail)["Subject"].split())


def test_v2_says_what_changed_and_keeps_the_text(v1, capsys):
    tree, out = v1
    v1_cover = cover_file(out / TOPIC / "v1")
    # A hand edit to v1's letter before it was sent is kept in v2.
    text = v1_cover.read_text()
    text = text.replace("Link: https://lore.kernel.org/r/5704C168",
                        "Tested on a 4.14 guest by hand.\n\n"
                        "Link: https://lore.kernel.org/r/5704C168", 1)
    v1_cover.write_text(text)
    v1_id = re.search(r"^Message-Id: <(.*)>$", text, re.M).group(1)
    v1_subject = subject_of(text).removeprefix("[PATCH 0/7] ")
    rework_branch(tree)

    stdout, _ = fmt(capsys, tree, out, "-v", "2")
    folder = out / TOPIC / "v2"
    names = sorted(p.name for p in folder.iterdir())
    assert names[0] == "v2-0000-cover-letter.patch"
    assert all(n.startswith("v2-") for n in names) and len(names) == 9
    cover = (folder / names[0]).read_text()
    assert subject_of(cover) == f"[PATCH v2 0/8] {v1_subject}"
    assert "Tested on a 4.14 guest by hand." in cover
    block = cover.split("Changes in v2:\n", 1)[1].split("\n\n", 1)[0]
    flat = " ".join(block.split())
    assert re.search(r'- 4/8 "mm: hwpoison: add hwpoison_put_last_page\(\) for soft '
                     r'offline": changed the subject, the commit message and '
                     r'mm/memory-failure\.c\.', flat), block
    assert '- 8/8 "mm/migrate: a follow-up": new patch.' in flat
    assert f"- Link to v1: https://lore.kernel.org/r/{v1_id}" in block
    # Unchanged patches are not listed; no rebase happened.
    assert "1/8" not in block and "Rebased" not in block
    # git's own range-diff is in the letter too.
    assert "Range-diff against v1:" in cover
    assert re.search(r"^4: +[0-9a-f]+ ! 4: +[0-9a-f]+ ", cover, re.M)
    for number, patch in enumerate(patch_files(folder), 1):
        assert f"Subject: [PATCH v2 {number}/8]" in patch.read_text()
    state = json.loads((out / TOPIC / "series.json").read_text())
    assert [v["version"] for v in state["versions"]] == [1, 2]
    assert f"change-id: {state['change_id']}" in cover
    assert f"change-id: {state['change_id']}" in v1_cover.read_text()
    assert "changes since v1 (git range-diff): 2 of 8 entries differ" in stdout


def test_v3_keeps_v2_changes_below_its_own(v1, capsys):
    tree, out = v1
    rework_branch(tree)
    fmt(capsys, tree, out, "-v", "2")
    fmt(capsys, tree, out, "-v", "3")
    cover = cover_file(out / TOPIC / "v3").read_text()
    assert cover.index("Changes in v3:") < cover.index("Changes in v2:")
    assert "No changes to the patches since v2." in cover
    assert cover.count("Changes in v2:") == 1
    # The base note is made afresh, never repeated.
    assert cover.count("The base-commit below is a local import") == 1


def test_v1_commits_rebuilt_from_its_files(v1, tmp_path, capsys):
    """A clone that never had v1's commits: range-diff still works, from
    v1's patch files replayed on v1's base."""
    tree, out = v1
    rework_branch(tree)
    clone = tmp_path / "clone"
    # --no-local: a real transfer, so unreachable objects (v1) stay behind.
    git(tmp_path, "clone", "-q", "--no-local", str(tree), str(clone))
    git(clone, "branch", "-q", TOPIC, f"origin/{TOPIC}")
    git(clone, "config", "user.name", "Fixture Author")
    git(clone, "config", "user.email", "fixture@example.org")
    state = json.loads((out / TOPIC / "series.json").read_text())
    old_tip = state["versions"][0]["tip"]
    missing = subprocess.run(["git", "-C", str(clone), "cat-file", "-e",
                              f"{old_tip}^{{commit}}"], capture_output=True)
    assert missing.returncode != 0, "the clone must not have v1's commits"
    out2 = tmp_path / "series2"
    shutil.copytree(out, out2)
    stdout, stderr = fmt(capsys, clone, out2, "-v", "2")
    assert "rebuilt them from its patch files" in stderr
    cover = cover_file(out2 / TOPIC / "v2").read_text()
    assert '8/8 "mm/migrate: a follow-up": new patch.' in " ".join(cover.split())


def test_parse_range_diff_of_real_output(v1):
    tree, _ = v1
    base = git(tree, "rev-parse", "master").strip()
    old_tip = git(tree, "rev-parse", TOPIC).strip()
    old_subjects = tuple(git(tree, "log", "--reverse", "--format=%s",
                             f"master..{TOPIC}").splitlines())
    rework_branch(tree)
    new_subjects = tuple(git(tree, "log", "--reverse", "--format=%s",
                             f"master..{TOPIC}").splitlines())
    output = range_diff(open_git_tree(tree), (base, old_tip), (base, TOPIC))
    changes = parse_range_diff(output, old_subjects, new_subjects)
    kinds = [(c.kind, c.old_number, c.new_number) for c in changes]
    assert kinds == [("same", 1, 1), ("same", 2, 2), ("same", 3, 3),
                     ("changed", 4, 4), ("same", 5, 5), ("same", 6, 6),
                     ("same", 7, 7), ("new", None, 8)]
    changed = changes[3]
    assert changed.parts == ("subject", "commit message", "mm/memory-failure.c")
    assert changed.old_subject == old_subjects[3]
    assert changed.subject == new_subjects[3]


def test_dropped_patch_is_named(v1, capsys):
    tree, out = v1
    # Drop patch 7 (-EBUSY) for v2.
    git(tree, "branch", "-q", "-f", TOPIC, f"{TOPIC}~1")
    fmt(capsys, tree, out, "-v", "2")
    cover = cover_file(out / TOPIC / "v2").read_text()
    flat = " ".join(cover.split("Changes in v2:", 1)[1].split("\n\n", 1)[0].split())
    assert ("Dropped v1's 7/7 \"mm: hwpoison: return -EBUSY when soft offline "
            "leaves a page in use\".") in flat


def test_developer_branch_v2_starts_where_v1_did(tmp_path, capsys, monkeypatch):
    """A branch with no upstream and no patchgen paragraph: v1 needs
    --base, v2 finds it in series.json."""
    fix_dates(monkeypatch)
    from patchgen.engine.fixtures import materialize
    tree = materialize("e3-v4.14", tmp_path / "dev")
    git(tree, "checkout", "-q", "-b", "mine")
    for name in ("one", "two"):
        (tree / "mm" / "migrate.c").write_text(
            (tree / "mm" / "migrate.c").read_text() + f"/* {name} */\n")
        git(tree, "commit", "-q", "-a", "-m", f"mm/migrate: {name}")
    git(tree, "checkout", "-q", "master")
    out = tmp_path / "series"
    fmt(capsys, tree, out, "--branch", "mine", "--base", "master")
    git(tree, "checkout", "-q", "mine")
    (tree / "mm" / "migrate.c").write_text(
        (tree / "mm" / "migrate.c").read_text() + "/* three */\n")
    git(tree, "commit", "-q", "-a", "-m", "mm/migrate: three")
    git(tree, "checkout", "-q", "master")
    stdout, _ = fmt(capsys, tree, out, "--branch", "mine", "-v", "2")
    assert "where v1 started" in stdout.splitlines()[0]
    cover = cover_file(out / "mine" / "v2").read_text()
    assert '- 3/3 "mm/migrate: three": new patch.' in cover
    assert "Rebased" not in cover


def test_single_patch_versions_keep_notes_below_the_line(tmp_path, capsys, monkeypatch):
    fix_dates(monkeypatch)
    from patchgen.engine.fixtures import materialize
    tree = materialize("e3-v4.14", tmp_path / "one")
    git(tree, "checkout", "-q", "-b", "fix")
    (tree / "mm" / "migrate.c").write_text(
        (tree / "mm" / "migrate.c").read_text() + "/* v1 */\n")
    git(tree, "commit", "-q", "-a", "-m", "mm/migrate: a fix", "-m", "Why.")
    git(tree, "checkout", "-q", "master")
    out = tmp_path / "series"
    fmt(capsys, tree, out, "--range", "master..fix")
    git(tree, "checkout", "-q", "fix")
    (tree / "mm" / "migrate.c").write_text(
        (tree / "mm" / "migrate.c").read_text() + "/* v2 */\n")
    git(tree, "commit", "-q", "-a", "--amend", "--no-edit")
    git(tree, "checkout", "-q", "master")
    fmt(capsys, tree, out, "--range", "master..fix", "-v", "2")
    (patch,) = patch_files(out / "fix" / "v2")
    assert patch.name.startswith("v2-0001-")
    text = patch.read_text()
    assert "Subject: [PATCH v2] mm/migrate: a fix" in text
    message, below = text.split("\n---\n", 1)
    assert "Changes in v2:" not in message
    assert below.startswith('Changes in v2:\n- EDITME: seeded from git range-diff; '
                            "say what changed and why, then\n  delete this line.\n"
                            '- 1/1 "mm/migrate: a fix": changed '
                            "mm/migrate.c.\n- Link to v1: https://lore.kernel.org/r/")
    # git am drops what is below ---: the commit is the branch's.
    git(tree, "checkout", "-q", "-b", "am", "master")
    git(tree, "am", "-q", str(patch))
    assert git(tree, "log", "-1", "--format=%B") == git(tree, "log", "-1",
                                                        "--format=%B", "fix")
    assert git(tree, "rev-parse", "HEAD^{tree}") == git(tree, "rev-parse", "fix^{tree}")
