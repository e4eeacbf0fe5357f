"""Deliberately changed versions of the real 6.1 tree, for verify's tests
and benchmark.

All of it happens in a worktree of the cached tree that belongs to the
tests (never in the cached repository's own checkout).  Each variant is a
commit on a branch `patchgen-test/<name>` on top of the imported commit,
made with git plumbing (a temporary index), so that making a branch
touches no working tree and the same change always gives the same commit.
The edits are made by code here at test time; no kernel source is stored
in the repository.
"""

import os
import re
import tempfile
from pathlib import Path

from patchgen.infra.cache import cache_dir
from patchgen.infra.gitenv import FIXED_IDENTITY
from patchgen.infra.runner import run

BRANCH_PREFIX = "patchgen-test/"


def _git(repo: Path, *args, env=None, timeout=900, input=None):
    return run(["git", "-C", repo, *args], env=env, timeout=timeout,
               input=input).stdout.strip()


def verify_worktree(cached_tree: Path) -> Path:
    """The tests' own worktree of the cached tree, at its first commit."""
    path = cache_dir("test-trees") / "linux61-verify"
    if not (path / ".git").exists():
        _git(cached_tree, "worktree", "prune")
        _git(cached_tree, "worktree", "add", "--detach", "--force", path,
             root_commit(cached_tree), timeout=1800)
    return path


def root_commit(repo: Path) -> str:
    return _git(repo, "rev-list", "--max-parents=0", "HEAD").splitlines()[0]


# --- the edits: each takes a file's text and returns the changed text ---

def remove_hwpoison_early_return(text: str) -> str:
    """free_pages_prepare() without its PageHWPoison early return, so that
    a poisoned page reaches the per-cpu and buddy free lists."""
    match = re.search(r"\n\tif \(unlikely\(PageHWPoison\(page\)\) && !order\) \{"
                      r"\n.*?\n\t\}\n", text, re.S)
    if not match or "return false;" not in match.group(0):
        raise AssertionError("no PageHWPoison early return in mm/page_alloc.c")
    return text[:match.start()] + "\n" + text[match.end():]


def hwpoison_early_return_clears_mapping(text: str) -> str:
    """free_pages_prepare()'s PageHWPoison early return also clears
    page->mapping, as the rest of the function does for every freed page
    (and as hwpoison-put-last's free-path hook does on 4.x): a poisoned
    zsmalloc page then loses the PAGE_MAPPING_MOVABLE that reset_page()
    left, and memory offline no longer takes it for a movable page.  The
    unmodified 6.1.192 tree keeps the mapping and its offline loops (what
    the memory-offline-movable check guards)."""
    match = re.search(r"\n\tif \(unlikely\(PageHWPoison\(page\)\) && !order\) \{"
                      r"\n.*?\n\t\}\n", text, re.S)
    if not match or match.group(0).count("\t\treturn false;\n") != 1:
        raise AssertionError("no PageHWPoison early return in mm/page_alloc.c")
    block = match.group(0).replace(
        "\t\treturn false;\n",
        "\t\tif (PageMappingFlags(page))\n\t\t\tpage->mapping = NULL;\n"
        "\t\treturn false;\n")
    return text[:match.start()] + block + text[match.end():]


def panic_in_memory_failure_init(text: str) -> str:
    """memory_failure_init() (a core_initcall) panics: the kernel dies at
    boot, after the serial console is up."""
    head = "static int __init memory_failure_init(void)\n{\n"
    start = text.index(head)
    ret = text.index("\treturn 0;\n}\n", start)
    return (text[:ret] + '\tpanic("patchgen test: deliberate panic at boot");\n'
            + text[ret:])


def drop_hwpoison_reference(text: str) -> str:
    """page_handle_poison() without its page_ref_inc(): a soft-offlined
    page ends with no reference, and unpoisoning it clears the flag
    without giving the page back (a leak the counter does not show)."""
    start = text.index("static bool page_handle_poison(")
    end = text.index("\n}\n", start)
    body = text[start:end]
    if body.count("\tpage_ref_inc(page);\n") != 1:
        raise AssertionError("no page_ref_inc() in page_handle_poison()")
    return (text[:start] + body.replace("\tpage_ref_inc(page);\n", "")
            + text[end:])


def break_the_build(text: str) -> str:
    """A line that is not C at the end of mm/memory-failure.c."""
    return text + "\nint patchgen_test_broken = this_is_not_declared;\n"


def touch_memory_failure(text: str) -> str:
    """A harmless change (a comment) to mm/memory-failure.c: what an
    incremental rebuild after one patch costs."""
    return text + "\n/* patchgen benchmark: an incremental rebuild */\n"


def unpoison_without_mf_mutex(text: str) -> str:
    """unpoison_memory() without mf_mutex, as in 5.10 and 4.x: unpoison no
    longer waits for a soft offline in flight, so it can land between the
    put and the reference hwpoison takes back (the race the check with
    unpoison guards)."""
    start = text.index("int unpoison_memory(unsigned long pfn)\n{\n")
    end = text.index("\n}\n", start)
    body = text[start:end]
    if (body.count("\tmutex_lock(&mf_mutex);\n") != 1
            or body.count("\tmutex_unlock(&mf_mutex);\n") != 1):
        raise AssertionError("unpoison_memory() does not take mf_mutex once")
    body = (body.replace("\tmutex_lock(&mf_mutex);\n", "")
            .replace("\tmutex_unlock(&mf_mutex);\n", ""))
    return text[:start] + body + text[end:]


def offline_refuses_hwpoison(text: str) -> str:
    """__test_page_isolated_in_pageblock() without its PageHWPoison skip:
    a soft-offlined page (hwpoison holds a reference, it is on no free
    list) then keeps its memory block from going offline, as 4.14's
    do_migrate_range() refuses a pinned page that is neither LRU nor
    movable (what the memory-offline check guards)."""
    skip = ("\t\telse if ((flags & MEMORY_OFFLINE) && PageHWPoison(page))\n"
            "\t\t\t/* A HWPoisoned page cannot be also PageBuddy */\n"
            "\t\t\tpfn++;\n")
    if text.count(skip) != 1:
        raise AssertionError("no PageHWPoison skip in page_isolation.c")
    return text.replace(skip, "")


def sysfs_soft_offline_does_nothing(text: str) -> str:
    """/sys/devices/system/memory/soft_offline_page accepts the address
    and does nothing with it (what the sysfs check guards)."""
    call = "\tret = soft_offline_page(pfn, 0);\n"
    if text.count(call) != 1:
        raise AssertionError("no soft_offline_page() call in memory.c")
    return text.replace(call, "\tret = 0;\n")


def add_vendor_config(text: str) -> str:
    """A .config committed at the top of the tree, as vendor trees do: an
    in-tree build's output that stops every out-of-tree build beside it."""
    assert text == "", "the tree already tracks a .config"
    return ("# A vendor's kernel configuration, tracked in git.\n"
            "CONFIG_64BIT=y\nCONFIG_MEMORY_FAILURE=y\n")


VARIANTS = {
    "broken-free-path": ("mm/page_alloc.c", remove_hwpoison_early_return,
                         "mm: let hwpoison pages reach the free lists"),
    "hwpoison-clears-mapping": ("mm/page_alloc.c",
                                hwpoison_early_return_clears_mapping,
                                "mm: clear page->mapping of a kept hwpoison page"),
    "leak-no-reference": ("mm/memory-failure.c", drop_hwpoison_reference,
                          "mm: drop the reference hwpoison keeps"),
    "panic-at-boot": ("mm/memory-failure.c", panic_in_memory_failure_init,
                      "mm: panic in memory_failure_init"),
    "build-error": ("mm/memory-failure.c", break_the_build,
                    "mm: a change that does not compile"),
    "touch-memory-failure": ("mm/memory-failure.c", touch_memory_failure,
                             "mm: a comment in memory-failure.c"),
    "unpoison-unlocked": ("mm/memory-failure.c", unpoison_without_mf_mutex,
                          "mm: unpoison without mf_mutex"),
    "offline-refuses-hwpoison": ("mm/page_isolation.c",
                                 offline_refuses_hwpoison,
                                 "mm: offline refuses hwpoisoned pages"),
    "sysfs-soft-offline-noop": ("drivers/base/memory.c",
                                sysfs_soft_offline_does_nothing,
                                "drivers/base: ignore soft_offline_page"),
    "tracked-config": (".config", add_vendor_config,
                       "vendor: track the kernel configuration"),
    # On top of tracked-config (PARENTS): a series on a vendor tree.
    "tracked-config-touch": ("mm/memory-failure.c", touch_memory_failure,
                             "mm: a comment in memory-failure.c"),
}
# A variant made on top of another variant's commit instead of the root.
PARENTS = {"tracked-config-touch": "tracked-config"}


def variant_branch(repo: Path, name: str) -> str:
    """Make (once) the branch patchgen-test/<name> and return its name."""
    path, edit, subject = VARIANTS[name]
    branch = BRANCH_PREFIX + name
    base = (_git(repo, "rev-parse", variant_branch(repo, PARENTS[name]))
            if name in PARENTS else root_commit(repo))
    shown = run(["git", "-C", repo, "show", f"{base}:{path}"], timeout=60,
                check=False)
    original = shown.stdout if shown.returncode == 0 else ""
    changed = edit(original)
    blob = _git(repo, "hash-object", "-w", "--stdin", input=changed)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(FIXED_IDENTITY, GIT_INDEX_FILE=os.path.join(tmp, "index"))
        _git(repo, "read-tree", base, env=env)
        _git(repo, "update-index", "--add", "--cacheinfo",
             f"100644,{blob},{path}",
             env=env)
        tree = _git(repo, "write-tree", env=env)
        commit = _git(repo, "commit-tree", tree, "-p", base, "-m",
                      f"{subject}\n\nMade by patchgen's tests.", env=env)
    _git(repo, "update-ref", f"refs/heads/{branch}", commit)
    return branch
