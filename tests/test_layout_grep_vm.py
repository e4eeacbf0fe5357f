"""The verify stage, check --build's builder and the kernel helpers know
no rule: nothing in patchgen/vm/, patchgen/review/build.py or
patchgen/kernel/ names the hwpoison rule's subject.  What is the rule's
(guest program, config fragments, verdict patterns, build settings) comes
from Rule.verify and Rule.check_build (patchgen/rules/hwpoison/recipe.py).

The words are those of the whole-package grep (issue 11); this test
covers the files of the verify-recipe change, with no allow-list.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "patchgen"
WORDS = re.compile(r"hwpoison|soft_offline|soft-offline|MEMORY_FAILURE|"
                   r"memory-failure|poison|put_page", re.IGNORECASE)


def files() -> list[Path]:
    found = sorted((PACKAGE / "vm").rglob("*"))
    found += sorted((PACKAGE / "kernel").rglob("*"))
    found.append(PACKAGE / "review" / "build.py")
    return [p for p in found if p.is_file() and "__pycache__" not in p.parts]


def test_the_files_are_there():
    names = {p.relative_to(PACKAGE).as_posix() for p in files()}
    assert {"vm/verify.py", "vm/verdict.py", "vm/kbuild.py", "vm/initramfs.py",
            "kernel/kconfig.py", "review/build.py"} <= names


def test_no_rule_subject_outside_the_rule():
    hits = []
    for path in files():
        for number, line in enumerate(path.read_text(errors="replace")
                                      .splitlines(), 1):
            if WORDS.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert hits == [], "\n".join(hits)


def test_the_grep_finds_what_it_looks_for():
    """The pattern itself can fail: each spelling is caught."""
    for text in ("HWPoison", "soft_offline_test", "soft-offline", "memory-failure.c",
                 "CONFIG_MEMORY_FAILURE", "PG_poison", "put_page("):
        assert WORDS.search(text), text
    assert not WORDS.search("a rule's guest test")
