"""The file sources: what files_containing() and read() answer, on disk
and in a commit, whatever the working tree holds meanwhile.

CommitTree reads through the working tree where it is the commit (same
hash) and searches with `git grep` on disk where git's stat comparison
says a file is unchanged; these tests make the working tree differ from
the commit in every way that shortcut must notice.
"""

import subprocess

from patchgen.engine import sources
from patchgen.engine.sources import open_git_tree, open_worktree
from patchgen.infra import objects
from patchgen.infra.gitenv import FIXED_IDENTITY


def git(root, *args) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True,
                          capture_output=True, text=True,
                          env={**FIXED_IDENTITY, "PATH": "/usr/bin:/bin",
                               "HOME": str(root)}).stdout


def make_repo(root, files: dict[str, str], gitignore: str = "") -> str:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mm").mkdir(exist_ok=True)
    # The shape sources.py asks of a kernel tree: a Makefile, include/.
    files = {"Makefile": "VERSION = 6\n", "include/linux/types.h": "int t;\n",
             **files}
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    if gitignore:
        (root / ".gitignore").write_text(gitignore)
    git(root, "init", "-q")
    git(root, "add", "-A", "-f")
    git(root, "commit", "-q", "-m", "base")
    return git(root, "rev-parse", "HEAD").strip()


def test_worktree_finds_tracked_files_that_gitignore_names(tmp_path):
    # The Debian tree's .gitignore names nearly every tracked file; an
    # untracked file that is not ignored counts too, an ignored one not.
    root = tmp_path / "t"
    make_repo(root, {"mm/a.c": "kfree(a);\n", "mm/b.c": "free(b);\n",
                     "drivers/c.h": "kfree(c);\n"}, gitignore="*.c\n*.h\n!new.c\n")
    (root / "mm" / "new.c").write_text("kfree(n);\n")
    (root / "mm" / "ignored.c").write_text("kfree(i);\n")
    assert open_worktree(root).files_containing(["kfree"]) == \
        ["drivers/c.h", "mm/a.c", "mm/new.c"]


def test_worktree_below_the_repository_top(tmp_path):
    root = tmp_path / "t"
    make_repo(root, {"linux/mm/a.c": "kfree(a);\n", "other/mm/b.c": "kfree(b);\n",
                     "linux/Makefile": "VERSION = 6\n",
                     "linux/include/linux/types.h": "int t;\n"})
    (root / "linux" / "mm" / "new.c").write_text("kfree(n);\n")
    (root / "other" / "mm" / "new.c").write_text("kfree(n);\n")
    assert open_worktree(root / "linux").files_containing(["kfree"]) == \
        ["mm/a.c", "mm/new.c"]


def test_commit_tree_answers_the_commit_not_the_working_tree(tmp_path):
    root = tmp_path / "t"
    head = make_repo(root, {f"mm/f{i}.c": f"kfree(p{i});\n" for i in range(40)}
                     | {"mm/plain.c": "free(p);\n", "mm/gone.c": "kfree(g);\n"})
    commit = open_git_tree(root).at(head)
    # The working tree changes after the commit: a word removed, a word
    # added, a file deleted, a file added, one staged, one not.
    (root / "mm" / "f0.c").write_text("free(p0);\n")
    (root / "mm" / "plain.c").write_text("kfree(p);\n")
    (root / "mm" / "gone.c").unlink()
    (root / "mm" / "added.c").write_text("kfree(x);\n")
    (root / "mm" / "f1.c").write_text("vfree(p1);\n")
    git(root, "add", "mm/f1.c", "mm/added.c")
    expected = sorted([f"mm/f{i}.c" for i in range(40)] + ["mm/gone.c"])
    assert commit.files_containing(["kfree"]) == expected
    assert commit.read("mm/f0.c") == b"kfree(p0);\n"
    assert commit.read("mm/f1.c") == b"kfree(p1);\n"
    assert commit.read("mm/gone.c") == b"kfree(g);\n"
    assert commit.read("mm/plain.c") == b"free(p);\n"
    assert not commit.exists("mm/added.c")
    # The files the working tree has unchanged are read from it, as the
    # commit has them.
    for i in range(2, 40):
        assert commit.read(f"mm/f{i}.c") == f"kfree(p{i});\n".encode()


def test_commit_tree_with_a_content_filter_asks_the_object_store(tmp_path):
    # With a filter, a file git calls unchanged is not its blob on disk:
    # the search must not trust the working tree.
    root = tmp_path / "t"
    head = make_repo(root, {"mm/a.c": "kfree(a);\n", "mm/b.c": "free(b);\n",
                            ".gitattributes": "*.c filter=hide\n"})
    (root / "mm" / "a.c").write_text("free(a);\n")
    git(root, "update-index", "--assume-unchanged", "mm/a.c")
    assert git(root, "diff-index", "--name-only", head) == ""
    assert sources._stands_in(str(root)) is False
    commit = open_git_tree(root).at(head)
    assert commit.files_containing(["kfree"]) == ["mm/a.c"]
    assert commit.read("mm/a.c") == b"kfree(a);\n"


def test_many_folders_switch_to_the_whole_tree_listing(tmp_path):
    root = tmp_path / "t"
    count = objects.WHOLE_TREE_AFTER + 5
    head = make_repo(root, {f"d{i}/x.c": f"int x{i};\n" for i in range(count)})
    top = str(root)
    before = objects.whole_tree.cache_info().misses
    for i in range(count):
        assert objects.entry(top, head, f"d{i}/x.c")[1] == "blob"
    assert objects.whole_tree.cache_info().misses == before + 1
    assert objects.entry(top, head, "d0") [1] == "tree"
    assert objects.entry(top, head, "d0/missing.c") is None
    assert sources.disk_copy(top, "d0/x.c", objects.entry(top, head, "d0/x.c")[2]) \
        == b"int x0;\n"
    (root / "d0" / "x.c").write_text("int changed;\n")
    assert sources.disk_copy(top, "d0/x.c", objects.entry(top, head, "d0/x.c")[2]) is None
