"""A property over the whole CLI: whatever the arguments, files and mails,
patchgen answers with an exit status and at most one sentence, never a
crash (exit 70, a traceback, an exception out of main()).

Hypothesis draws a command (scan, apply, format, check, demo --list) and
its arguments from the command's own options, with values that are real
paths (a fixture repository, a folder of drawn mails, files of drawn
bytes, paths that do not exist) or drawn text and numbers.  Every path
it can write to is inside one scratch folder (the process works there).
"""

import contextlib
import io
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings, strategies as st

from patchgen.cli import main
from patchgen.engine.fixtures import materialize

SANDBOX = Path(tempfile.mkdtemp(prefix="patchgen-fuzz-"))
TREE = SANDBOX / "linux"
crashes: list[str] = []


def _setup() -> None:
    if not TREE.exists():
        materialize("e3-v4.14", TREE)
        main(["apply", "--rule=hwpoison-put-last", "--tree", str(TREE)])


GOOD_MAIL = (
    "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\n"
    "From: {author}\nDate: Wed, 6 Apr 2016 12:00:00 +0000\n"
    "Subject: {subject}\nMessage-Id: <{n}@example.org>\n\n{body}\n\n"
    "Signed-off-by: {author}\n---\n mm/new.c | 1 +\n 1 file changed, 1 insertion(+)\n\n"
    "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n"
    "+++ {target}\n@@ -0,0 +{count} @@\n{added}\n-- \n2.39.2\n")

texts = st.text(min_size=0, max_size=40)
mails = st.builds(
    lambda author, subject, body, path, target, count, added, n, damage: (
        GOOD_MAIL.format(author=author, subject=subject, body=body, path=path,
                         target=target, count=count, added=added, n=n)
        .encode("utf-8", "surrogatepass") + damage),
    author=st.one_of(st.just("A U Thor <a@example.org>"), texts),
    subject=st.one_of(st.just("[PATCH 1/1] mm: new"), texts,
                      st.just("=?utf-8?q?mm=3A_a=0Ab?="),
                      st.just("=?iso-8859-1?q?J=FCrgen?=")),
    body=texts,
    path=st.one_of(st.just("mm/new.c"), st.just("tmp/x"), texts),
    target=st.one_of(st.just("b/mm/new.c"), st.just("/tmp/x"), texts),
    count=st.one_of(st.just("1"), st.just("1,3"), st.just("x")),
    added=st.one_of(st.just("+int a;"), texts),
    n=st.integers(0, 9),
    damage=st.binary(max_size=30))

VALUE_KINDS = ["tree", "tree-sub", "missing", "file", "mails", "text", "number",
               "range"]


@st.composite
def values(draw, kinds=tuple(VALUE_KINDS), counter=[0]):
    kind = draw(st.sampled_from(kinds))
    counter[0] += 1
    if kind == "tree":
        return str(TREE)
    if kind == "tree-sub":
        return str(TREE / "mm")
    if kind == "missing":
        return str(SANDBOX / f"missing-{counter[0]}")
    if kind == "file":
        path = SANDBOX / f"file-{counter[0]}"
        path.write_bytes(draw(st.one_of(st.binary(max_size=200), mails)))
        return str(path)
    if kind == "mails":
        folder = SANDBOX / f"mails-{counter[0]}"
        folder.mkdir()
        for index, mail in enumerate(draw(st.lists(mails, min_size=0, max_size=3))):
            (folder / f"{index + 1:04d}-x.patch").write_bytes(mail)
        return str(folder)
    if kind == "number":
        return draw(st.sampled_from(["0", "-1", "1", "2", "nan", "inf", "1e9", "x"]))
    if kind == "range":
        return draw(st.sampled_from(["HEAD~1..HEAD", "HEAD..HEAD", "..", "@{-1}",
                                     "hwpoison-put-last", "a/b", "", "-x"]))
    text = draw(texts)
    # Text is never an absolute path: nothing may be written outside.
    return text.lstrip("/") or text


OPTIONS = {
    "scan": ["--tree", "--rule", "--json"],
    "apply": ["--tree", "--rule", "--branch", "--force", "--dry-run"],
    "format": ["--tree", "--branch", "--range", "--base", "-v", "--rfc", "-o",
               "--topic", "--strict", "--no-checkpatch", "--max-line-length",
               "--cover-template", "--to", "--cc"],
    "check": ["SERIES", "--tree", "--json", "--strict", "--checkpatch", "-q",
              "--json", "-q"],
    "demo": ["--list"],
}
FLAGS = {"--json", "--force", "--dry-run", "--rfc", "--strict", "--no-checkpatch",
         "-q", "--list"}


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(OPTIONS)))
    argv = [command]
    if command == "demo":
        return argv + ["--list"]
    if command == "check":
        argv.append(draw(st.one_of(values(), values(kinds=("mails", "file")),
                                   values(kinds=("mails",)), st.sampled_from(
            ["HEAD~1..HEAD", "hwpoison-put-last", "HEAD~3..hwpoison-put-last"]))))
    if draw(st.integers(0, 4)):  # mostly the real tree, so the work is reached
        argv += ["--tree", str(TREE)]
    chosen = draw(st.lists(st.sampled_from(
        [o for o in OPTIONS[command] if o != "SERIES"]), max_size=5))
    for option in chosen:
        if option == "SERIES":
            argv.append(draw(values()))
        elif option in FLAGS:
            argv.append(option)
        else:
            argv += [option, draw(values())]
    if command == "format" and "-o" not in chosen:
        argv += ["-o", str(SANDBOX / "series")]
    if command == "format" and draw(st.booleans()):
        argv.append("--no-checkpatch")
    return argv


def run_cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:   # argparse: usage
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


# Under CI the examples are drawn from a fixed seed (the same 150 every
# run), so a run that lands is not undone by a new draw; elsewhere each
# run draws afresh and may find a new crash (that is how the From: parser
# crash of test_hostile.py was found).
@settings(max_examples=int(os.environ.get("PATCHGEN_FUZZ_EXAMPLES", "150")),
          derandomize=os.environ.get("CI") == "true",
          deadline=None, suppress_health_check=list(HealthCheck))
@given(command_lines())
def test_no_argument_file_or_mail_crashes_the_cli(argv):
    _setup()
    cwd = os.getcwd()
    os.chdir(SANDBOX)
    try:
        code, err = run_cli(argv)
    finally:
        os.chdir(cwd)
    event(f"{argv[0]} exit {code}")
    if code == 70 or "Traceback" in err or "internal error" in err:
        crashes.append(f"{argv!r}: exit {code}: {err.strip()[:300]}")
    assert code != 70 and "Traceback" not in err, f"{argv!r}: {err}"
    lines = [line for line in err.splitlines() if line.startswith("patchgen: error:")]
    assert len(lines) <= 1, err
