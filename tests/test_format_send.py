"""What git send-email makes of the folder format writes, with no flags:
Debian's git-email run with --dry-run only (nothing is sent, no network),
its log read back per mail."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import need
from formatkit import applied_fixture, fix_dates, git, run_cli
from test_format import MAINTAINERS

TOPIC = "hwpoison-put-last"
SUGGESTED = "vbabka@suse.cz"        # the rule's Suggested-by: (in two patches)


def need_send_email() -> None:
    probe = subprocess.run(["git", "send-email", "--dry-run"], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL)
    need("No patch files specified" in probe.stdout + probe.stderr,
         "git send-email (Debian packages git-email and libmailtools-perl)")


def send_dry_run(folder: Path, cwd: Path, *extra) -> list[dict]:
    """git send-email --dry-run on *folder*: per mail, its Subject and the
    addresses of its To: and Cc: headers as git send-email would send them."""
    need_send_email()
    result = subprocess.run(
        ["git", "send-email", "--dry-run", "--confirm=never",
         "--8bit-encoding=UTF-8", "--no-validate", *extra, str(folder)],
        cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
        timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    mails = []
    for log in result.stdout.split("Dry-OK. Log says:")[1:]:
        head = log.split("\n\n", 1)[0]
        unfolded = re.sub(r"\n[ \t]+", " ", head)
        fields = {}
        for line in unfolded.splitlines():
            name, _, value = line.partition(": ")
            fields.setdefault(name, value)
        mails.append({
            "subject": fields.get("Subject", ""),
            "message_id": fields.get("Message-Id", "").strip("<>"),
            "to": re.findall(r"[\w.+-]+@[\w.-]+", fields.get("To", "")),
            "cc": re.findall(r"[\w.+-]+@[\w.-]+", fields.get("Cc", "")),
            # Who the mail would go to: the SMTP log's RCPT TO:, or (no
            # smtp server set) the sendmail command's arguments.
            "rcpt": re.findall(r"^RCPT TO:<(.*)>$", log, re.M) or
            re.search(r"^Sendmail: \S+ -i (.*)$", log, re.M).group(1).split(),
        })
    return mails


@pytest.fixture
def e3_maintained(tmp_path, monkeypatch):
    """The e3 fixture with a MAINTAINERS file below the series, and the
    user's own format.to/format.cc/sendemail.cc in its git config."""
    fix_dates(monkeypatch)
    tree = applied_fixture("e3-v4.14", tmp_path / "e3")
    git(tree, "checkout", "-q", "master")
    (tree / "MAINTAINERS").write_text(MAINTAINERS)
    git(tree, "add", "MAINTAINERS")
    git(tree, "commit", "-q", "-m", "Add MAINTAINERS")
    git(tree, "rebase", "-q", "master", TOPIC)
    git(tree, "checkout", "-q", "master")
    git(tree, "config", "format.to", "Always To <always-to@example.org>")
    git(tree, "config", "format.cc", "always-cc@example.org")
    git(tree, "config", "sendemail.cc", "send-cc@example.org")
    return tree


def test_send_email_dry_run_needs_no_flags(e3_maintained, tmp_path, capsys):
    code, stdout, stderr = run_cli(capsys, "format", "--tree", e3_maintained,
                                   "-o", tmp_path / "series", "--no-checkpatch",
                                   "--cc", "extra@example.org")
    assert code == 0, stderr
    folder = tmp_path / "series" / TOPIC / "v1"
    assert f"  git send-email {folder}" in stdout.splitlines()
    state = json.loads((tmp_path / "series" / TOPIC / "series.json").read_text())
    record = state["versions"][0]

    # --suppress-cc=body: git send-email must not add the trailers' people
    # itself, so what it sends comes from the headers format wrote.
    mails = send_dry_run(folder, e3_maintained, "--suppress-cc=body",
                         "--suppress-cc=author", "--suppress-cc=self")
    n = len(list(folder.glob("*.patch"))) - 1
    assert n >= 2 and len(mails) == n + 1
    cover, patches = mails[0], mails[1:]
    assert cover["subject"].startswith(f"[PATCH 0/{n}] ")
    for mail in mails:
        # The user's format.to/format.cc and --cc, on every mail; the
        # sender (fixture@example.org) on none.
        assert "always-to@example.org" in mail["to"], mail
        assert {"always-cc@example.org", "extra@example.org"} <= set(mail["cc"])
        assert "fixture@example.org" not in mail["to"] + mail["cc"]
        # sendemail.cc reaches every mail too (git send-email adds it, and
        # format wrote it).
        assert "send-cc@example.org" in mail["rcpt"]
        assert "top@example.org" not in mail["rcpt"]
    by_subject = {m["subject"]: m for m in patches}
    migrate = next(m for s, m in by_subject.items() if "mm/migrate:" in s)
    page_alloc = next(m for s, m in by_subject.items() if "mm/page_alloc:" in s)
    # Per patch: mm/migrate.c goes to PAGE MIGRATION, not to MEMORY
    # MANAGEMENT (X: mm/migrate.c); mm/page_alloc.c the other way round.
    assert "migrate@example.org" in migrate["to"]
    assert "mm@example.org" not in migrate["to"] + migrate["cc"]
    assert "mm@example.org" in page_alloc["to"]
    assert "migrate@example.org" not in page_alloc["to"] + page_alloc["cc"]
    # The cover letter goes to everyone.
    assert {"mm@example.org", "migrate@example.org"} <= set(cover["to"])
    assert {"linux-mm@example.org", "migration@example.org",
            SUGGESTED} <= set(cover["cc"])
    # The Suggested-by: person is copied on the patches that name him.
    suggested = [m["subject"] for m in patches if SUGGESTED in m["cc"]]
    named = [p.name for p in sorted(folder.iterdir())
             if f"Suggested-by: Vlastimil Babka <{SUGGESTED}>" in p.read_text()
             and "cover-letter" not in p.name]
    assert len(suggested) == len(named) >= 1
    # git send-email keeps the Message-Ids format wrote (what the sent
    # state and the next version's "Link to" rely on).
    assert cover["message_id"] == record["message_id"]
    # series.json holds what the headers hold.
    for name, mail in zip(record["files"], mails):
        assert [re.search(r"[\w.+-]+@[\w.-]+", a).group(0)
                for a in record["recipients"][name]["to"]] == mail["to"]

    # Plainly, with no flags at all: the same recipients, and git
    # send-email's own copies from the trailers agree with the headers.
    plain = send_dry_run(folder, e3_maintained)
    for ours, theirs in zip(mails, plain):
        assert set(ours["rcpt"]) - set(theirs["rcpt"]) == set()


def test_non_ascii_names_are_encoded(e3_maintained, tmp_path, capsys):
    git(e3_maintained, "config", "--unset", "format.to")
    git(e3_maintained, "config", "format.to", "Uwe Kleine-König <ukl@example.org>")
    code, _, stderr = run_cli(capsys, "format", "--tree", e3_maintained,
                              "-o", tmp_path / "series", "--no-checkpatch")
    assert code == 0, stderr
    folder = tmp_path / "series" / TOPIC / "v1"
    cover = next(folder.glob("0000-*")).read_text()
    head = cover.split("\n\n", 1)[0]
    assert head.isascii()
    assert "=?utf-8?q?Uwe_Kleine-K=C3=B6nig?= <ukl@example.org>" in head
    mails = send_dry_run(folder, e3_maintained)
    assert all("ukl@example.org" in m["to"] for m in mails)


def test_no_maintainer_goes_to_the_lists(tmp_path, capsys, monkeypatch):
    """A section without M: (MEMORY MANAGEMENT in v4.14 lists no
    maintainer): the mail goes To: its list, never with an empty To:."""
    fix_dates(monkeypatch)
    tree = applied_fixture("e3-v4.14", tmp_path / "e3")
    git(tree, "checkout", "-q", "master")
    (tree / "MAINTAINERS").write_text(
        "MEMORY MANAGEMENT\nL:\tlinux-mm@example.org\nS:\tMaintained\nF:\tmm/\n"
        "F:\tinclude/linux/mm.h\n")
    git(tree, "add", "MAINTAINERS")
    git(tree, "commit", "-q", "-m", "Add MAINTAINERS")
    git(tree, "rebase", "-q", "master", TOPIC)
    git(tree, "checkout", "-q", "master")
    code, _, stderr = run_cli(capsys, "format", "--tree", tree, "-o", tmp_path / "s",
                              "--no-checkpatch")
    assert code == 0, stderr
    mails = send_dry_run(tmp_path / "s" / TOPIC / "v1", tree)
    assert len(mails) == len(list((tmp_path / "s" / TOPIC / "v1").glob("*.patch")))
    for mail in mails:
        assert mail["to"] == ["linux-mm@example.org"], mail
        assert "linux-mm@example.org" not in mail["cc"]
    assert SUGGESTED in mails[0]["cc"]


@pytest.mark.realtree
def test_real_v414_tree_recipients(tmp_path, capsys, monkeypatch):
    """The series on a real v4.14 tree (a shared, sparse clone of
    $PATCHGEN_REAL_TREES/linux-4.14.67; skipped without it, CI has no 4.x
    tree), recipients from that tree's own get_maintainer.pl, read back by
    git send-email: HWPOISON's maintainer on the memory-failure.c patches
    and the cover letter, the lists To: on the patches whose section (MEMORY
    MANAGEMENT, in v4.14) names no maintainer."""
    import os
    trees = os.environ.get("PATCHGEN_REAL_TREES")
    source = Path(trees).expanduser() / "linux-4.14.67" if trees else None
    if source is None or not (source / ".git").exists():
        pytest.skip("set PATCHGEN_REAL_TREES to a folder with linux-4.14.67")
    fix_dates(monkeypatch)
    clone = tmp_path / "linux"
    git(tmp_path, "clone", "-q", "--shared", "--no-checkout", str(source), str(clone))
    git(clone, "sparse-checkout", "set", "--no-cone", "/*", "!/*/", "/scripts/",
        "/mm/", "/include/", "/Documentation/", "/arch/x86/", "/init/", "/ipc/",
        "/kernel/", "/lib/", "/drivers/Makefile", "/fs/Makefile")
    git(clone, "checkout", "-q", "master")
    git(clone, "config", "user.name", "Test Developer")
    git(clone, "config", "user.email", "dev@example.org")
    assert run_cli(capsys, "apply", "--rule=hwpoison-put-last", "--tree", clone)[0] == 0
    code, stdout, stderr = run_cli(capsys, "format", "--tree", clone, "-o",
                                   tmp_path / "series")
    assert code == 0, stdout + stderr
    assert "checkpatch, --max-line-length=80: 0 errors, 0 warnings, 0 checks" in stdout
    mails = send_dry_run(tmp_path / "series" / TOPIC / "v1", clone)
    naoya = "n-horiguchi@ah.jp.nec.com"
    lists = ["linux-mm@kvack.org", "linux-kernel@vger.kernel.org"]
    assert mails[0]["to"] == [naoya] and set(lists) <= set(mails[0]["cc"])
    for mail in mails[1:]:
        # "mm: hwpoison:" patches change mm/memory-failure.c (HWPOISON).
        touches_memory_failure = "] mm: hwpoison: " in mail["subject"]
        assert mail["to"] == ([naoya] if touches_memory_failure else lists), mail
