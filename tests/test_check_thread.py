"""check on what a reviewer has: a thread mbox with replies and two
versions, stdin, and the .eml folder of `b4 send -o`.

The other side is the real b4 (from PyPI, the test extra): which version
`b4 am` picks from the same mbox and which reply trailers it puts on each
patch must be what check reports; the .eml files are b4's own output.
"""

import email
import json
import re
import shutil
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest

from formatkit import applied_fixture, git

TRAILER = re.compile(r"^(Reviewed-by|Acked-by|Tested-by|Nacked-by): .+$", re.M)
REVIEWED = "Reviewed-by: Rita Reviewer <rita@example.org>"
ACKED = "Acked-by: Andy Acker <andy@example.org>"
TESTED = "Tested-by: Tom Tester <tom@example.org>"
QUOTED = "Signed-off-by: Quoted Person <q@example.org>"


def b4() -> str:
    path = shutil.which("b4")
    assert path, "b4 is not installed: pip install '.[test]' installs it"
    return path


def patchgen(*args, stdin=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "patchgen", *map(str, args)],
                          capture_output=True, text=True, input=stdin, cwd=cwd,
                          timeout=600)


def _header(path: Path, name: str) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    return str(message[name])


def _reply(to: Path, number: int, sender: str, body: str) -> str:
    message_id = _header(to, "Message-Id")
    return (f"From reply{number}@example.org Thu Apr  7 10:00:00 2016\n"
            f"From: {sender}\nSubject: Re: {_header(to, 'Subject')}\n"
            f"Date: Thu, 7 Apr 2016 10:0{number}:00 +0000\n"
            f"Message-Id: <reply{number}@example.org>\n"
            f"In-Reply-To: {message_id}\nReferences: {message_id}\n\n{body}\n")


@pytest.fixture(scope="module")
def thread(tmp_path_factory):
    """A v1 and a v2 of the same 7-patch series in one mbox, with three
    replies: a Reviewed-by on v2 2/7 (below a quoted Signed-off-by that is
    no trailer of the reviewer's), an Acked-by on the v2 cover letter, and
    a Tested-by on v1 3/7 (the same patch in v2)."""
    root = tmp_path_factory.mktemp("thread")
    tree = applied_fixture("e3-v4.14", root / "tree")
    assert tree is not None
    for version in (1, 2):
        git(tree, "format-patch", "-q", f"-v{version}", "--cover-letter",
            "--thread=shallow", "--base=master", "-o", str(root / f"v{version}"),
            "master..hwpoison-put-last")
    # git numbers the Message-Ids by the second: make v1's its own.
    for path in (root / "v1").iterdir():
        path.write_text(path.read_text().replace(".git.", ".v1.git."))
    v1 = sorted((root / "v1").iterdir())
    v2 = sorted((root / "v2").iterdir())
    replies = [
        _reply(v2[2], 1, "Rita Reviewer <rita@example.org>",
               f"On Thu, Fixture wrote:\n> {QUOTED}\n\nLooks right.\n\n{REVIEWED}"),
        _reply(v2[0], 2, "Andy Acker <andy@example.org>",
               f"For the series:\n\n{ACKED}"),
        _reply(v1[3], 3, "Tom Tester <tom@example.org>", TESTED)]
    mbox = root / "thread.mbox"
    mbox.write_text("\n".join([p.read_text() for p in v1 + v2] + replies))
    return tree, mbox, root


def _checked(tree, *args, stdin=None):
    done = patchgen("check", *args, "--tree", tree, "--json", stdin=stdin)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout), done.stderr


def _our_trailers(report) -> dict[str, set[str]]:
    subjects = {m["position"]: m["subject"] for m in report["series"]["mails"]}
    found: dict[str, set[str]] = {}
    for result in report["results"]:
        if result["check"] == "replies" and result["patch"] is not None:
            found[subjects[result["patch"]]] = {d.split(" (in ")[0]
                                                for d in result["details"]}
    return found


def _b4_trailers(mbx: Path, original: Path) -> dict[str, set[str]]:
    """The trailers b4 am added to each patch of the .mbx it wrote."""
    before = {_header(p, "Subject"): set(m.group(0) for m in TRAILER.finditer(
        p.read_text())) for p in sorted(original.iterdir())}
    out = Path(mbx.parent) / "split"
    out.mkdir()
    subprocess.run(["git", "mailsplit", f"-o{out}", str(mbx)], check=True,
                   capture_output=True)
    added = {}
    for part in sorted(out.iterdir()):
        subject = _header(part, "Subject")
        body = part.read_text().split("\n---\n")[0]
        trailers = {m.group(0) for m in TRAILER.finditer(body)}
        added[subject] = trailers - before.get(subject, set())
    return {s: t for s, t in added.items() if t}


def test_a_thread_is_read_the_way_b4_am_reads_it(thread, tmp_path):
    tree, mbox, root = thread
    report, stderr = _checked(tree, mbox)
    kept = [m for m in report["series"]["mails"] if m["kind"] == "patch"]
    assert len(kept) == 7
    assert all(m["subject"].startswith("[PATCH v2 ") for m in kept), kept
    aside = report["set_aside"]
    assert sum(a["reason"] == "a reply in the thread" for a in aside) == 3
    assert sum(a["reason"].startswith("v1 of the series") for a in aside) == 8
    assert "set aside 11 mails" in stderr and "checking v2, the newest" in stderr
    # The quoted Signed-off-by is no trailer of the reviewer's.
    assert QUOTED not in json.dumps(report["reply_trailers"])

    out = tmp_path / "b4"
    done = subprocess.run([b4(), "am", "-m", str(mbox), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (mbx,) = out.glob("*.mbx")
    assert "v2" in mbx.name                       # b4 picks the newest too
    theirs = _b4_trailers(mbx, root / "v2")
    # b4 subjects carry no [PATCH v2 n/7] prefix; compare by summary.
    ours = {re.sub(r"^\[[^\]]*\]\s*", "", s): t
            for s, t in _our_trailers(report).items()}
    theirs = {re.sub(r"^\[[^\]]*\]\s*", "", s): t for s, t in theirs.items()}
    assert ours == theirs
    # And the facts behind it: the cover's ack on all 7, the review on 2/7,
    # the v1 test carried to the unchanged 3/7.
    assert sum(ACKED in t for t in ours.values()) == 7
    assert [s for s, t in ours.items() if REVIEWED in t] == [
        "mm/memory_hotplug: skip hwpoisoned pages when offlining"]
    assert [s for s, t in ours.items() if TESTED in t] == [
        "mm/page_alloc: keep hwpoisoned order-0 pages off the free lists"]


def test_version_picks_another_version_and_a_missing_one_is_refused(thread):
    tree, mbox, _ = thread
    report, stderr = _checked(tree, mbox, "--version", "1")
    kept = [m for m in report["series"]["mails"] if m["kind"] == "patch"]
    assert len(kept) == 7 and all("v2" not in m["subject"] for m in kept)
    assert "checking v1)" in stderr
    # The ack on v2's cover is on no mail of v1: one series-level warning;
    # trailers of a newer version are not carried back.
    replies = [r for r in report["results"] if r["check"] == "replies"]
    assert not any(ACKED in json.dumps(r) and r["patch"] for r in replies)
    assert any(r["patch"] is None and r["state"] == "warning" for r in replies)

    done = patchgen("check", mbox, "--tree", tree, "--version", "3")
    assert done.returncode == 31
    assert done.stderr.strip().splitlines() == [
        f"patchgen: error: {mbox} holds no v3 of the series (v1, v2): give "
        "--version with one of those"]
    assert patchgen("check", mbox, "--tree", tree, "--version", "x").returncode == 2


def test_stdin_is_the_same_series_as_the_file(thread):
    tree, mbox, _ = thread
    from_file, _ = _checked(tree, mbox)
    from_stdin, _ = _checked(tree, "-", stdin=mbox.read_text())
    assert from_stdin["series"]["input"] == "stdin"
    strip = lambda report: [(r["label"], r["check"], r["state"])  # noqa: E731
                            for r in report["results"]]
    assert strip(from_stdin) == strip(from_file)
    empty = patchgen("check", "-", "--tree", tree, stdin="")
    assert empty.returncode == 31
    assert "standard input is empty" in empty.stderr


def test_the_eml_folder_of_b4_send(tmp_path):
    tree = applied_fixture("e3-v4.14", tmp_path / "tree")
    git(tree, "checkout", "-q", "hwpoison-put-last")
    for key, value in (("user.name", "Fixture"), ("user.email", "fixture@example.org")):
        git(tree, "config", key, value)
    env_run = dict(cwd=tree, capture_output=True, text=True, timeout=300)
    done = subprocess.run([b4(), "prep", "--enroll", "master"], **env_run)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "sent"
    done = subprocess.run([b4(), "send", "-o", str(out), "--no-sign"], **env_run)
    assert done.returncode == 0, done.stderr
    emls = sorted(out.glob("*.eml"))
    assert len(emls) == 8 and not list(out.glob("*.patch"))
    report, _ = _checked(tree, out)
    kinds = [m["kind"] for m in report["series"]["mails"]]
    assert kinds.count("patch") == 7 and kinds.count("cover") == 1
    assert report["base"]["from"] == "base-commit"
    assert not [r for r in report["results"]
                if r["state"] == "fail" and r["check"] != "cover-letter"], report
