"""format's git format-patch options: --subject-prefix (and --rfc),
--in-reply-to, --base with --range (prerequisite-patch-id:), --stdout;
read back with the real git (mailinfo, patch-id, mailsplit, am) and git
send-email --dry-run."""

import subprocess


from formatkit import cover_file, fix_dates, git, patch_files, run_cli
from formatkit import e3  # noqa: F401  (a fixture)
from test_format import commit_file, headers, subject_of
from test_format_send import send_dry_run

TOPIC = "hwpoison-put-last"



def fmt(capsys, tree, out, *extra, code=0):
    got, stdout, stderr = run_cli(capsys, "format", "--tree", tree, "-o", out,
                                  "--no-checkpatch", *extra)
    assert got == code, stdout + stderr
    return stdout, stderr


def test_subject_prefix_for_a_stable_tree(e3, tmp_path, capsys):
    fmt(capsys, e3, tmp_path / "a", "--subject-prefix", "PATCH 4.14")
    folder = tmp_path / "a" / TOPIC / "v1"
    n = len(patch_files(folder))
    assert subject_of(cover_file(folder)).startswith(f"[PATCH 4.14 0/{n}] mm: ")
    first = next(p for p in patch_files(folder) if "page_alloc" in subject_of(p))
    assert subject_of(first).startswith("[PATCH 4.14 ") and \
        f"/{n}] mm/page_alloc: " in subject_of(first)
    # git mailinfo (what git am reads) strips the whole prefix.
    info = subprocess.run(["git", "mailinfo", "/dev/null", "/dev/null"],
                          input=first.read_text(), capture_output=True, text=True,
                          check=True, cwd=e3).stdout
    assert "Subject: mm/page_alloc: keep hwpoisoned order-0 pages off the free lists" \
        in info
    # RFC still works, in front.
    fmt(capsys, e3, tmp_path / "b", "--subject-prefix", "PATCH 4.14", "--rfc")
    folder = tmp_path / "b" / TOPIC / "v1"
    assert subject_of(patch_files(folder)[0]).startswith(f"[RFC PATCH 4.14 1/{n}] ")
    _, stderr = fmt(capsys, e3, tmp_path / "c", "--subject-prefix", "[PATCH]",
                    code=28)
    assert "without brackets" in stderr


def test_in_reply_to(e3, tmp_path, capsys):
    fmt(capsys, e3, tmp_path / "s", "--in-reply-to", "<review-1@example.org>")
    folder = tmp_path / "s" / TOPIC / "v1"
    cover = headers(cover_file(folder))
    assert str(cover["In-Reply-To"]) == "<review-1@example.org>"
    assert str(cover["References"]) == "<review-1@example.org>"
    for patch in patch_files(folder):
        mail = headers(patch)
        assert str(mail["In-Reply-To"]) == str(cover["Message-Id"])
        assert "<review-1@example.org>" in str(mail["References"])
    mails = send_dry_run(folder, e3)
    assert mails[0]["subject"].startswith(f"[PATCH 0/{len(patch_files(folder))}]")
    _, stderr = fmt(capsys, e3, tmp_path / "t", "--in-reply-to", "not an id",
                    code=28)
    assert "is not a Message-Id" in stderr


def test_base_with_range_names_prerequisites(tmp_path, capsys, monkeypatch):
    fix_dates(monkeypatch)
    from patchgen.engine.fixtures import materialize
    tree = materialize("e3-v4.14", tmp_path / "dev")
    git(tree, "checkout", "-q", "-b", "work")
    prereq = commit_file(tree, "mm/migrate.c", "/* prerequisite */\n",
                         "mm/migrate: a prerequisite", "Posted separately.")
    commit_file(tree, "mm/page_alloc.c", "/* one */\n", "mm/page_alloc: one", "One.")
    commit_file(tree, "mm/page_alloc.c", "/* two */\n", "mm/page_alloc: two", "Two.")
    git(tree, "checkout", "-q", "master")
    master = git(tree, "rev-parse", "master").strip()
    stdout, stderr = fmt(capsys, tree, tmp_path / "s", "--range", f"{prereq}..work",
                         "--base", "master", "--topic", "two")
    assert "prerequisite-patch-id:" in stderr
    folder = tmp_path / "s" / "two" / "v1"
    assert len(patch_files(folder)) == 2
    text = cover_file(folder).read_text()
    assert f"base-commit: {master}\n" in text
    # The prerequisite's id is git patch-id --stable of its diff.
    diff = git(tree, "show", prereq)
    patch_id = subprocess.run(["git", "patch-id", "--stable"], input=diff,
                              capture_output=True, text=True, check=True,
                              cwd=tree).stdout.split()[0]
    assert f"prerequisite-patch-id: {patch_id}\n" in text
    assert "change-id: " in text
    # A --base above where the range starts is refused.
    _, stderr = fmt(capsys, tree, tmp_path / "u", "--range", f"{prereq}..work",
                    "--base", "work", code=21)
    assert "is not an ancestor of where --range" in stderr


def test_stdout_is_one_mbox(e3, tmp_path, capsys):
    out = tmp_path / "series"
    code, stdout, stderr = run_cli(capsys, "format", "--tree", e3, "-o", out,
                                   "--no-checkpatch", "--stdout")
    assert code == 0, stderr
    assert not out.exists()                   # nothing written under -o
    assert "wrote stdout (one mbox" in stderr and "round trip" in stderr
    n = int(git(e3, "rev-list", "--count", f"master..{TOPIC}").strip())
    assert stdout.startswith("From ") and stdout.count("\nFrom ") == n
    mbox = tmp_path / "series.mbox"
    mbox.write_text(stdout)
    split = tmp_path / "split"
    split.mkdir()
    count = subprocess.run(["git", "mailsplit", f"-o{split}", str(mbox)],
                           capture_output=True, text=True, check=True).stdout
    assert count.strip() == str(n + 1)
    # git am of the mbox (the cover letter left out) rebuilds the branch.
    git(e3, "checkout", "-q", "-b", "am-check", "master")
    mails = sorted(split.iterdir())[1:]
    git(e3, "am", "-q", *[str(m) for m in mails])
    assert git(e3, "rev-parse", "HEAD^{tree}") == git(e3, "rev-parse", f"{TOPIC}^{{tree}}")
    git(e3, "checkout", "-q", "master")
    # git send-email takes one mail a file: split, the mbox sends as the
    # folder does, recipients included.
    sent = send_dry_run(split, e3)
    assert len(sent) == n + 1 and sent[0]["subject"].startswith(f"[PATCH 0/{n}]")
    assert all("vbabka@suse.cz" in m["cc"] for m in sent[:1])



def test_recipient_headers_keep_a_latin1_diff_byte_for_byte(tmp_path, monkeypatch):
    """A diff of a file that is not UTF-8 (an old driver's Latin-1
    comment), as the real git format-patch writes it: add_recipients adds
    the headers and keeps every other byte, and git am still applies it.
    (format itself cannot write such a series yet: its round trip feeds
    the file to git mailinfo as UTF-8 text; see issue 10.)"""
    from patchgen.engine.fixtures import materialize
    from patchgen.series.patchfiles import add_recipients
    fix_dates(monkeypatch)
    tree = materialize("e3-v4.14", tmp_path / "dev")
    git(tree, "checkout", "-q", "-b", "latin1")
    with open(tree / "mm" / "migrate.c", "ab") as out:
        out.write("/* M\xfcller's note */\n".encode("latin-1"))
    git(tree, "add", "mm/migrate.c")
    commit_file(tree, "mm/page_alloc.c", "/* two */\n", "mm: a Latin-1 note",
                "A note in Latin-1.")
    git(tree, "format-patch", "-q", "-o", str(tmp_path / "out"), "-1")
    (patch,) = (tmp_path / "out").iterdir()
    before = patch.read_bytes()
    add_recipients(patch, ["Someone <someone@example.org>"],
                   ["J\u00f6rg <joerg@example.org>", "list@example.org"])
    after = patch.read_bytes()
    assert b"+/* M\xfcller's note */" in after
    added = (b"To: Someone <someone@example.org>\n"
             b"Cc: =?utf-8?b?SsO2cmc=?= <joerg@example.org>,\n    list@example.org\n")
    assert after.replace(added, b"") == before
    git(tree, "checkout", "-q", "-b", "am", "master")
    subprocess.run(["git", "-C", str(tree), "am", "-q", str(patch)], check=True)
    assert git(tree, "rev-parse", "HEAD^{tree}") == git(tree, "rev-parse", "latin1^{tree}")
