"""A checkpatch ERROR fails format (exit 80) unless --allow-checkpatch-errors:
the real 6.1 checkpatch.pl on a commit without Signed-off-by: (with the
user's format.signOff set, which format does not apply) and on a style
error."""

import pytest

from formatkit import fix_dates, git, run_cli
from patchgen.infra.errors import CheckpatchErrors
from patchgen.engine.fixtures import materialize

pytestmark = pytest.mark.realtree


def developer_commit(tree, text: str, message: str) -> None:
    git(tree, "checkout", "-q", "-b", "my-fix")
    with open(tree / "mm" / "migrate.c", "a") as out:
        out.write(text)
    git(tree, "commit", "-q", "-a", "-F", "-", input=message)
    git(tree, "checkout", "-q", "master")


@pytest.fixture
def tree(tmp_path, monkeypatch):
    fix_dates(monkeypatch)
    return materialize("e3-v4.14", tmp_path / "e3")


def fmt(capsys, tree, out, linux61, *extra):
    return run_cli(capsys, "format", "--tree", tree, "-o", out, "--range",
                   "master..my-fix", "--scripts-from", linux61, *extra)


def test_missing_signoff_under_format_signoff(tree, tmp_path, capsys, linux61):
    git(tree, "config", "format.signOff", "true")
    developer_commit(tree, "/* a note */\n",
                     "mm/migrate: add a note\n\nThe note explains nothing at all.\n")
    code, stdout, stderr = fmt(capsys, tree, tmp_path / "series", linux61)
    assert code == CheckpatchErrors.exit_code == 80, stderr
    assert "ERROR:MISSING_SIGN_OFF" in stdout
    assert "format never adds a Signed-off-by:, whatever format.signOff says" in stderr
    assert "--allow-checkpatch-errors" in stderr
    assert "git send-email" not in stdout and "not ready to send" in stdout
    assert stderr.count("\n") <= 2 and "Traceback" not in stderr
    # The files are there to look at; no Signed-off-by: was made up.
    (patch,) = (tmp_path / "series" / "my-fix" / "v1").glob("0001-*.patch")
    assert "Signed-off-by:" not in patch.read_text()

    code, stdout, stderr = fmt(capsys, tree, tmp_path / "series", linux61,
                               "--allow-checkpatch-errors")
    assert code == 0, stderr
    assert "ERROR:MISSING_SIGN_OFF" in stdout
    assert "git send-email" in stdout


def test_style_error(tree, tmp_path, capsys, linux61):
    name = git(tree, "config", "user.name").strip()
    address = git(tree, "config", "user.email").strip()
    developer_commit(tree, "\nint migrate_note( int x)\n{\n\treturn x;\n}\n",
                     "mm/migrate: add migrate_note()\n\nA helper that returns "
                     f"its argument.\n\nSigned-off-by: {name} <{address}>\n")
    code, stdout, stderr = fmt(capsys, tree, tmp_path / "series", linux61)
    assert code == 80, stderr
    assert "ERROR:SPACING: space prohibited after that open parenthesis" in stdout
    assert "checkpatch found 1 error in 0001-mm-migrate-add-migrate_note.patch" \
        in stderr
    # Warnings alone do not fail: the same helper, correctly spaced, only
    # lacks a declaration (no ERROR) and goes out.
    git(tree, "branch", "-q", "-D", "my-fix")
    developer_commit(tree, "\nint migrate_note(int x)\n{\n\treturn x;\n}\n",
                     "mm/migrate: add migrate_note()\n\nA helper that returns "
                     f"its argument.\n\nSigned-off-by: {name} <{address}>\n")
    code, stdout, stderr = fmt(capsys, tree, tmp_path / "series", linux61)
    assert code == 0, stdout + stderr
    assert "checkpatch, --max-line-length=80: 0 errors" in stdout
