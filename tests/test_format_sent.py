"""Sent versions: `format --sent`, an mbox with the letter's Message-Id
(--sent-mbox), never rewriting what was sent, the series continued from
another -o folder, and the EDITME changes list (format and check warn)."""

import json
import mailbox
import subprocess
from pathlib import Path


from formatkit import cover_file, git, run_cli
from patchgen.infra.errors import VersionSent
from test_format_versions import rework_branch
from test_format_versions import v1  # noqa: F401  (a fixture)

TOPIC = "hwpoison-put-last"


def fmt(capsys, tree, out, *extra, code=0):
    got, stdout, stderr = run_cli(capsys, "format", "--tree", tree, "-o", out,
                                  "--no-checkpatch", *extra)
    assert got == code, stdout + stderr
    return stdout, stderr


def state_of(out: Path) -> dict:
    return json.loads((out / TOPIC / "series.json").read_text())


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_sent_version_is_never_rewritten(v1, capsys):
    tree, out = v1
    before = snapshot(out / TOPIC / "v1")
    stdout, _ = fmt(capsys, tree, out, "--sent")
    assert "marked v1 of hwpoison-put-last sent" in stdout
    assert "the next `patchgen format` writes v2" in stdout
    assert snapshot(out / TOPIC / "v1") == before        # --sent writes no mail
    (record,) = state_of(out)["versions"]
    assert record["sent"] and record["sent_how"] == "--sent"
    # Every file's Message-Id, as in its headers.
    assert sorted(record["message_ids"]) == sorted(record["files"])
    for name, message_id in record["message_ids"].items():
        assert f"Message-Id: <{message_id}>" in (out / TOPIC / "v1" / name).read_text()
    assert record["message_ids"][record["files"][0]] == record["message_id"]

    # Again: nothing changes.
    stdout, _ = fmt(capsys, tree, out, "--sent")
    assert "already marked sent" in stdout
    # -v 1 of a sent version refuses, with its own exit code.
    _, stderr = fmt(capsys, tree, out, "-v", "1", code=VersionSent.exit_code)
    assert VersionSent.exit_code == 81
    assert "v1 of hwpoison-put-last was sent" in stderr and "write v2" in stderr
    # Without -v the next run is v2; v1 stays as it was sent.
    rework_branch(tree)
    stdout, stderr = fmt(capsys, tree, out)
    assert "v1 was sent" in stderr and "writing v2" in stderr
    assert stdout.startswith("wrote ") and (out / TOPIC / "v2").is_dir()
    assert snapshot(out / TOPIC / "v1") == before
    cover = cover_file(out / TOPIC / "v2").read_text()
    assert f"- Link to v1: https://lore.kernel.org/r/{record['message_id']}" in cover
    # v2 is not sent: a rerun replaces it, and -v 1 points there.
    _, stderr = fmt(capsys, tree, out)
    assert "replacing that folder only" in stderr
    _, stderr = fmt(capsys, tree, out, "-v", "1", code=81)
    assert "leave out -v to write v2" in stderr


def received_mbox(v1_folder: Path, path: Path) -> Path:
    """The thread as a reviewer's archive has it: the mails as they went
    out (with a Received: header) and a reply to the cover letter."""
    box = mailbox.mbox(str(path))
    for patch in sorted(v1_folder.iterdir()):
        message = mailbox.mboxMessage(patch.read_bytes())
        message["Received"] = "from mail.example.org by lists.example.org"
        box.add(message)
    cover_id = mailbox.mboxMessage(
        cover_file(v1_folder).read_bytes())["Message-Id"]
    reply = mailbox.mboxMessage(
        "From: Reviewer <r@example.org>\nSubject: Re: [PATCH 0/4] ...\n"
        f"Message-Id: <reply-1@example.org>\nIn-Reply-To: {cover_id}\n\n"
        "Looks good.\n\nReviewed-by: Reviewer <r@example.org>\n")
    box.add(reply)
    box.close()
    return path


def test_sent_recognised_from_an_mbox(v1, tmp_path, capsys):
    tree, out = v1
    mbox = received_mbox(out / TOPIC / "v1", tmp_path / "thread.mbox")
    # The mbox is one git mailsplit reads: every mail of v1 and the reply.
    mails = len(list((out / TOPIC / "v1").glob("*.patch")))
    split = tmp_path / "split"
    split.mkdir()
    count = subprocess.run(["git", "mailsplit", f"-o{split}", str(mbox)],
                           capture_output=True, text=True, check=True).stdout
    assert mails >= 3 and count.strip() == str(mails + 1)

    # An mbox without the letter marks nothing (and says so).
    other = tmp_path / "other.mbox"
    box = mailbox.mbox(str(other))
    box.add(mailbox.mboxMessage("From: x@example.org\nMessage-Id: <x@y>\n\nhi\n"))
    box.close()
    _, stderr = fmt(capsys, tree, out, "--sent", "--sent-mbox", other, code=27)
    assert "nothing marked sent" in stderr
    _, stderr = fmt(capsys, tree, out, "--sent-mbox", tmp_path / "missing", code=28)
    assert "no such file" in stderr

    # Formatting with --sent-mbox: v1 is recognised as sent, v2 is written.
    rework_branch(tree)
    stdout, stderr = fmt(capsys, tree, out, "--sent-mbox", mbox)
    assert "is in" in stderr and "marked it sent" in stderr
    v1_record, v2_record = state_of(out)["versions"]
    assert v1_record["sent_how"] == f"found in {mbox}"
    assert not v2_record.get("sent")
    assert (out / TOPIC / "v2").is_dir()


def test_change_id_survives_another_output_folder(v1, tmp_path, capsys):
    tree, out = v1
    fmt(capsys, tree, out, "--sent")
    v1_state = state_of(out)
    rework_branch(tree)
    other = tmp_path / "elsewhere"
    stdout, stderr = fmt(capsys, tree, other)
    assert "continuing it here" in stderr
    state = state_of(other)
    assert state["change_id"] == v1_state["change_id"]
    assert [v["version"] for v in state["versions"]] == [1, 2]
    assert state["versions"][0]["folder"] == str((out / TOPIC / "v1").resolve())
    cover = cover_file(other / TOPIC / "v2").read_text()
    assert f"change-id: {v1_state['change_id']}" in cover
    assert f"Link to v1: https://lore.kernel.org/r/{v1_state['versions'][0]['message_id']}" \
        in cover
    assert "Range-diff against v1:" in cover
    # Nothing of patchgen's in the repository: no ref, no config key.
    assert "patchgen" not in git(tree, "config", "--list", "--local")
    assert git(tree, "for-each-ref", "--format=%(refname)").split() == \
        ["refs/heads/hwpoison-put-last", "refs/heads/master"]


def test_editme_changes_list(v1, tmp_path, capsys):
    tree, out = v1
    fmt(capsys, tree, out, "--sent")
    rework_branch(tree)
    _, stderr = fmt(capsys, tree, out)
    assert "is seeded from git range-diff: edit it" in stderr
    cover_path = cover_file(out / TOPIC / "v2")
    text = cover_path.read_text()
    assert "Changes in v2:\n- EDITME: seeded from git range-diff" in text

    # check warns about it, as a series-level result.
    code, stdout, _ = run_cli(capsys, "check", out / TOPIC / "v2", "--tree", tree,
                              "--json")
    found = [r for r in json.loads(stdout)["results"] if r["check"] == "version"]
    assert found and found[0]["state"] == "warning", found
    assert "EDITME" in found[0]["description"]

    # The author edits the list; a rerun of v2 keeps the edit, no warning.
    edited = text.replace(
        "- EDITME: seeded from git range-diff; say what changed and why, then\n"
        "  delete this line.\n", "- Reworded patch 2 after review.\n")
    assert edited != text
    cover_path.write_text(edited)
    _, stderr = fmt(capsys, tree, out)
    assert "kept the edited `Changes in v2:` list" in stderr
    assert "EDITME" not in stderr
    again = cover_file(out / TOPIC / "v2").read_text()
    assert "Changes in v2:\n- Reworded patch 2 after review.\n" in again
    assert "EDITME" not in again
