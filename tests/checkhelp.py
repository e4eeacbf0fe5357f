"""Helpers for the `patchgen check` tests: series made for real, then damaged.

A series is what `patchgen apply` commits on a fixture tree, mailed with
plain `git format-patch --cover-letter --thread=shallow --base=...` (until
`patchgen format` lands), with the cover letter's placeholders filled in
as an author would.  Damage is done to the mail files, as a mailer or a
careless author would do it.
"""

import json
import re
import shutil
from pathlib import Path

from patchgen.engine.apply import apply_rule
from patchgen.cli import main
from patchgen.engine.rule import REWRITE
from patchgen.infra.runner import run

# The rule these tests run (there is no default rule: name it)
HWPOISON = "hwpoison-put-last"

BRANCH = HWPOISON


def git(repo, *args, env=None) -> str:
    return run(["git", "-C", str(repo), *args], env=env, timeout=600).stdout


def format_series(repo: Path, base: str, tip: str, out: Path, *extra) -> Path:
    """git format-patch the commits base..tip into *out*, cover letter filled."""
    git(repo, "format-patch", "-q", "--cover-letter", "--thread=shallow",
        f"--base={base}", "-o", str(out), *extra, f"{base}..{tip}")
    cover = next(out.glob("*0000-cover-letter.patch"))
    text = cover.read_text()
    text = text.replace("*** SUBJECT HERE ***",
                        "mm: hwpoison: poison soft-offlined pages only on their last put")
    text = text.replace("*** BLURB HERE ***",
                        "Soft offline sets PG_hwpoison after put_page(): a race.\n"
                        "This series closes it.")
    cover.write_text(text)
    return out


def applied_tree(fixture_tree, name: str) -> Path:
    """A fixture tree with the rule's series on branch BRANCH."""
    tree = fixture_tree(name)
    result = apply_rule(tree, HWPOISON)
    assert result.report.verdict == REWRITE, result.report.summary
    return tree


def generated_series(fixture_tree, name: str, out: Path) -> tuple[Path, Path]:
    """apply + patchgen format: the series a user would mail."""
    from patchgen.series.format import FormatOptions, format_series as patchgen_format
    tree = applied_tree(fixture_tree, name)
    result = patchgen_format(FormatOptions(tree=tree, branch=BRANCH, output=out,
                                           checkpatch=False))
    return tree, result.folder


def patch_files(series: Path) -> list[Path]:
    return sorted(p for p in series.glob("*.patch") if "0000-cover" not in p.name)


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, count))


def copy_series(series: Path, dest: Path) -> Path:
    shutil.copytree(series, dest)
    return dest


def check_json(capsys, series, tree, *args) -> tuple[int, dict | None, str]:
    """Run `patchgen check --json` in-process; (exit code, document, stderr)."""
    code = main(["check", str(series), "--tree", str(tree), "--json", *map(str, args)])
    captured = capsys.readouterr()
    document = json.loads(captured.out) if captured.out.strip() else None
    return code, document, captured.err


def failures(document: dict) -> list[dict]:
    return [r for r in document["results"] if r["state"] == "fail"]


def states(document: dict) -> set[str]:
    return {r["state"] for r in document["results"]}


def result_for(document: dict, label: str, check: str) -> dict:
    found = [r for r in document["results"] if r["label"] == label and r["check"] == check]
    assert len(found) == 1, (label, check, found)
    return found[0]


def tree_state(repo: Path, shared: bool = False) -> dict:
    """What must not change in the user's tree: its checked-out branch and
    commit, index and files; for a private tree also every ref, worktree,
    the config and the object count (git count-objects -v).  A *shared*
    tree (the cached 6.1 tree, which other tests and sessions add worktrees
    and refs to) is judged on the first."""
    state = {
        # Empty for a detached HEAD (symbolic-ref -q exits 1 then).
        "head": run(["git", "-C", str(repo), "symbolic-ref", "-q", "HEAD"],
                    check=False).stdout,
        "commit": git(repo, "rev-parse", "HEAD"),
        "status": git(repo, "status", "--porcelain", "--ignored", "--untracked-files=all"),
        "index": git(repo, "ls-files", "--stage", "--debug")[:100000],
    }
    if not shared:
        state.update({
            "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
            "worktrees": git(repo, "worktree", "list", "--porcelain"),
            "config": Path(git(repo, "rev-parse", "--path-format=absolute",
                               "--git-common-dir").strip(), "config").read_text(),
            "objects": git(repo, "count-objects", "-v"),
        })
    return state


def line_of(text: str, needle: str) -> int:
    """1-based line number of the first line containing *needle*."""
    for number, line in enumerate(text.split("\n"), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not found")


def subject_of(patch: Path) -> str:
    match = re.search(r"^Subject: \[PATCH[^\]]*\] (.*(?:\n .*)*)", patch.read_text(), re.M)
    return " ".join(match.group(1).split())


def new_branch(repo: Path, branch: str, start: str, picks=()) -> Path:
    """Branch *branch* at *start* with *picks* cherry-picked, checked out in
    a worktree beside *repo* (returned) for further commits."""
    git(repo, "branch", branch, start)
    worktree = repo.parent / f"wt-{branch}"
    git(repo, "worktree", "add", "-q", str(worktree), branch)
    for commit in picks:
        git(worktree, "cherry-pick", "--allow-empty", commit)
    return worktree


def commit_edit(worktree: Path, path: str, old: str, new: str, subject: str,
                body: str = "Change it for a test.") -> None:
    edit(worktree / path, old, new)
    signer = f"{git(worktree, 'config', 'user.name').strip()} " \
             f"<{git(worktree, 'config', 'user.email').strip()}>"
    git(worktree, "commit", "-qa", "-m", f"{subject}\n\n{body}\n\n"
        f"Signed-off-by: {signer}")


def series_commits(repo: Path, branch: str = BRANCH) -> list[str]:
    return git(repo, "rev-list", "--reverse", f"master..{branch}").split()
