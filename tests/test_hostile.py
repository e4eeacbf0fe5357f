"""The defects that trying to break patchgen found (issue 10), each
reproduced with real git, real files and real hostile input: one sentence
and a distinct exit code, never a traceback, nothing of ours left behind."""

import os
import re
import signal
import time
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BRANCH = "hwpoison-put-last"


def patchgen(*argv, cwd=None, env=None, input=None, timeout=300, stdout=None):
    """Run the real CLI in a child process: exit status, stdout, stderr."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT))
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "patchgen", *map(str, argv)],
                          cwd=cwd, env=full_env, input=input, timeout=timeout,
                          stdout=stdout if stdout is not None else subprocess.PIPE,
                          stderr=subprocess.PIPE)
    out = proc.stdout.decode("utf-8", "replace") if proc.stdout else ""
    return proc.returncode, out, proc.stderr.decode("utf-8", "replace")


def git(repo, *args, env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(["git", "-C", str(repo), *args], check=True, env=full_env,
                          capture_output=True, text=True).stdout


def _rows(table: str) -> dict:
    """check's table as {(patch label, check): (state, reason)}."""
    rows, label = {}, None
    for line in table.splitlines():
        match = re.match(r"^(\S*)\s+(\S+)\s+(pass|warn|fail|skip)\s+(.*)$", line)
        if match:
            label = match.group(1) or label
            rows[(label, match.group(2))] = (match.group(3), match.group(4))
    return rows


def one_sentence(err: str) -> str:
    """The one error sentence of *err*; the notes a command prints on its
    way (e.g. format finding a branch's series elsewhere) are not errors."""
    lines = [line for line in err.splitlines()
             if line.strip() and not line.startswith("patchgen: note: ")]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith("patchgen: error: "), err
    return lines[0]


# --- 1: apply --force and a branch checked out in another worktree ----------

def test_force_refuses_a_branch_checked_out_in_another_worktree(fixture_tree, tmp_path):
    tree = fixture_tree("e3-v4.14")
    assert patchgen("apply", "--rule=hwpoison-put-last", "--tree", tree)[0] == 0
    other = tmp_path / "other"
    git(tree, "worktree", "add", "-q", other, BRANCH)
    (other / "NOTES").write_text("work in the other worktree\n")
    git(other, "add", "NOTES")
    git(other, "commit", "-q", "-m", "mine")
    tip = git(other, "rev-parse", "HEAD").strip()
    code, out, err = patchgen("apply", "--rule=hwpoison-put-last", "--tree", tree, "--force")
    assert code == 7, err
    line = one_sentence(err)
    assert str(other) in line and "worktree" in line
    assert git(tree, "rev-parse", f"refs/heads/{BRANCH}").strip() == tip
    assert git(other, "rev-parse", "HEAD").strip() == tip


# --- 6: bytes that are not UTF-8, and a locale that is not UTF-8 -----------

CJK = "山田 太郎"


def _latin1_repo(fixture_tree) -> Path:
    """A fixture tree with a Latin-1 file (as arch/arm/crypto/sha256_glue.c
    is) and a commit by a CJK-named author whose context reaches it."""
    tree = fixture_tree("e3-v4.14")
    (tree / "mm" / "latin.c").write_bytes(
        b"/* Copyright \xa9 2016 J\xfcrgen */\nint x;\nint y;\n")
    git(tree, "add", "mm/latin.c")
    git(tree, "commit", "-q", "-m", "mm: add latin.c")
    (tree / "mm" / "latin.c").write_bytes(
        b"/* Copyright \xa9 2016 J\xfcrgen */\nint x;\nint y = 1;\n")
    git(tree, "commit", "-q", "-a", "-m",
        f"mm: set y \u2014 the em dash\n\nSigned-off-by: {CJK} <fixture@example.org>",
        env={"GIT_AUTHOR_NAME": CJK})
    return tree


def _hostile_locale() -> dict:
    """A Latin-1 locale when this machine has one (.ci/run makes it), else
    ASCII: either way, not UTF-8."""
    listed = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout
    if "en_US.iso88591" in listed.split():
        return {"LC_ALL": "en_US.ISO-8859-1", "LANG": "en_US.ISO-8859-1"}
    return {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}


def test_check_and_format_keep_latin1_bytes(fixture_tree, tmp_path):
    tree = _latin1_repo(fixture_tree)
    code, out, err = patchgen("check", "HEAD~1..HEAD", "--tree", tree)
    assert code == 0, out + err
    assert "Traceback" not in err
    assert re.search(r"\bapply +pass", out), out
    code, out, err = patchgen("format", "--tree", tree, "--range", "HEAD~1..HEAD",
                              "--topic", "latin", "-o", tmp_path / "series",
                              "--no-checkpatch")
    assert code == 0, err
    patch = next((tmp_path / "series" / "latin" / "v1").glob("0001-*.patch"))
    assert b"Copyright \xa9 2016 J\xfcrgen" in patch.read_bytes()


@pytest.mark.parametrize("json_output", [False, True])
def test_a_locale_that_is_not_utf8(fixture_tree, tmp_path, json_output):
    tree = _latin1_repo(fixture_tree)
    env = _hostile_locale()
    code, _, err = patchgen("format", "--tree", tree, "--range", "HEAD~1..HEAD",
                            "--topic", "latin", "-o", tmp_path / "series",
                            "--no-checkpatch", env=env)
    assert code == 0, err
    folder = tmp_path / "series" / "latin" / "v1"
    extra = ["--json"] if json_output else []
    code, out, err = patchgen("check", folder, "--tree", tree, *extra, env=env)
    assert "Traceback" not in err and code in (0, 1), err
    assert "signoff" in out
    code, out, err = patchgen("check", "HEAD~1..HEAD", "--tree", tree, *extra, env=env)
    assert "Traceback" not in err and code == 0, out + err
    code, out, err = patchgen("apply", "--rule=hwpoison-put-last",
                              "--tree", tree, "--dry-run", env=env)
    assert code == 0 and "Traceback" not in err, err


# --- 7: one malformed mail is one failing result; the review goes on -------

def _mail(number: int, total: int, subject: str, diff: str) -> str:
    return (f"From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\n"
            f"From: A U Thor <a@example.org>\n"
            f"Date: Wed, 6 Apr 2016 12:00:00 +0000\n"
            f"Subject: [PATCH {number}/{total}] {subject}\n"
            f"Message-Id: <{number}@example.org>\n\n"
            f"Why.\n\nSigned-off-by: A U Thor <a@example.org>\n---\n"
            f" {diff.split()[2][2:]} | 1 +\n 1 file changed, 1 insertion(+)\n\n"
            f"{diff}-- \n2.39.2\n")


def _new_file(path: str, target: str | None = None) -> str:
    return (f"diff --git a/{path} b/{path}\nnew file mode 100644\n"
            f"--- /dev/null\n+++ {target or 'b/' + path}\n@@ -0,0 +1 @@\n+int a;\n")


def test_malformed_mails_fail_alone(fixture_tree, tmp_path):
    tree = fixture_tree("e3-v4.14")
    folder = tmp_path / "mails"
    folder.mkdir()
    (folder / "0001-a.patch").write_text(
        _mail(1, 3, "=?utf-8?q?mm=3A_one=0Atwo?=", _new_file("mm/one.c")))
    (folder / "0002-b.patch").write_text(
        _mail(2, 3, "mm: tmp", _new_file("tmp/x", target="/tmp/x")))
    (folder / "0003-c.patch").write_text(
        _mail(3, 3, "mm: three", _new_file("mm/three.c")))
    code, out, err = patchgen("check", folder, "--tree", tree)
    assert code == 1, out + err
    assert "Traceback" not in err and "internal error" not in err, err
    rows = _rows(out)
    assert rows[("1/3", "subject")][0] == "fail"
    assert "decodes to control characters" in rows[("1/3", "subject")][1]
    assert rows[("1/3", "apply")][0] == "pass"
    assert rows[("2/3", "diff")][0] == "fail"
    assert "does not parse" in rows[("2/3", "diff")][1]
    assert rows[("3/3", "mail")][0] == "pass"
    assert rows[("3/3", "diff")][0] == "pass"


def test_a_from_header_pythons_parser_cannot_read(fixture_tree, tmp_path):
    """`From: a<` makes Python's address parser raise IndexError (found by
    tests/test_cli_fuzz.py): that mail fails its own checks, the others
    pass, and check says so without a traceback."""
    tree = fixture_tree("e3-v4.14")
    folder = tmp_path / "mails"
    folder.mkdir()
    (folder / "0001-a.patch").write_text(
        _mail(1, 2, "mm: one", _new_file("mm/one.c")).replace(
            "From: A U Thor <a@example.org>", "From: a<"))
    (folder / "0002-b.patch").write_text(
        _mail(2, 2, "mm: two", _new_file("mm/two.c")))
    code, out, err = patchgen("check", folder, "--tree", tree)
    assert code == 1, out + err
    assert "Traceback" not in err and "internal error" not in err, err
    rows = _rows(out)
    assert any(state == "fail" for (patch, _), (state, _) in rows.items()
               if patch == "1/2")
    assert rows[("2/2", "mail")][0] == "pass"


@pytest.mark.parametrize("content", [b"\x7fELF\x02\x01\x01\x00binary\xff",
                                     b"This is not perl (April 2016).\n", None])
def test_checkpatch_that_is_not_perl_is_one_sentence(fixture_tree, tmp_path, content):
    tree = fixture_tree("e3-v4.14")
    script = tmp_path / "checkpatch.pl"
    if content is not None:
        script.write_bytes(content)
    git(tree, "commit", "-q", "--allow-empty", "-m", "mm: empty")
    code, out, err = patchgen("check", "HEAD~1..HEAD", "--tree", tree,
                              "--checkpatch", script)
    assert code == 34, out + err
    assert "--checkpatch" in one_sentence(err)


# --- 11: templates in Jinja2's sandbox; series.json stays in its folder -----

EXPLOIT = "{{ cycler.__init__.__globals__.os.popen('touch %s; id').read() }}"


@pytest.fixture
def applied(fixture_tree):
    tree = fixture_tree("e3-v4.14")
    assert patchgen("apply", "--rule=hwpoison-put-last", "--tree", tree)[0] == 0
    return tree


def _format(tree, out, *extra, env=None):
    return patchgen("format", "--tree", tree, "-o", out, "--no-checkpatch", *extra,
                    env=env)


def test_cover_template_cannot_run_code(applied, tmp_path):
    marker = tmp_path / "ran"
    template = tmp_path / "cover.j2"
    template.write_text("mm: subject\n\n" + EXPLOIT % marker + "\n")
    code, out, err = _format(applied, tmp_path / "series", "--cover-template", template)
    assert code == 24, out + err
    assert "cover letter template" in one_sentence(err)
    assert not marker.exists()
    assert not (tmp_path / "series" / BRANCH / "v1").exists()


def test_rule_templates_are_sandboxed_too(tmp_path):
    import jinja2.sandbox
    from patchgen.infra.templates import environment
    assert isinstance(environment(), jinja2.sandbox.SandboxedEnvironment)
    marker = tmp_path / "ran"
    with pytest.raises(jinja2.sandbox.SecurityError):
        environment().from_string(EXPLOIT % marker).render()
    assert not marker.exists()


def test_cover_template_that_is_not_utf8(applied, tmp_path):
    template = tmp_path / "cover.j2"
    template.write_bytes(b"mm: subject\n\nJ\xfcrgen wrote this in Latin-1.\n")
    code, out, err = _format(applied, tmp_path / "series", "--cover-template", template)
    assert code == 24, out + err
    assert "not UTF-8" in one_sentence(err)


@pytest.mark.parametrize("tamper", ["outside", "list", "not-json"])
def test_tampered_series_state(applied, tmp_path, tamper):
    out = tmp_path / "series"
    assert _format(applied, out)[0] == 0
    state_file = out / BRANCH / "series.json"
    secret = tmp_path / "secret.txt"
    secret.write_text("Subject: [PATCH 0/4] the secret\n\nSECRET-WORDS\n")
    if tamper == "outside":
        import json
        state = json.loads(state_file.read_text())
        state["versions"][0]["folder"] = "../.."
        state["versions"][0]["files"][0] = "secret.txt"
        state_file.write_text(json.dumps(state))
    elif tamper == "list":
        state_file.write_text("[]\n")
    else:
        state_file.write_bytes(b"\xff\xfe{")
    code, stdout, err = _format(applied, out, "-v", "2")
    assert code == 52, stdout + err
    assert "series.json" in one_sentence(err)
    assert not (out / BRANCH / "v2").exists()
    assert not any("SECRET" in p.read_text(errors="replace")
                   for p in out.rglob("*.patch"))


# --- 10: a reader that goes away never turns a failing review into 0 -------

def _failing_series(fixture_tree, tmp_path):
    tree = fixture_tree("e3-v4.14")
    folder = tmp_path / "mails"
    folder.mkdir()
    (folder / "0001-a.patch").write_text(
        _mail(1, 1, "no subsystem prefix", _new_file("mm/one.c")))
    return tree, folder


def test_closed_pipe_keeps_the_failing_status(fixture_tree, tmp_path):
    tree, folder = _failing_series(fixture_tree, tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        code, _, err = patchgen("check", folder, "--tree", tree, stdout=write_end)
    finally:
        os.close(write_end)
    assert code == 1, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_head_minus_one(fixture_tree, tmp_path):
    tree, folder = _failing_series(fixture_tree, tmp_path)
    shell = (f"set -o pipefail; PYTHONPATH={ROOT} {sys.executable} -m patchgen "
             f"check {folder} --tree {tree} | head -1")
    proc = subprocess.run(["bash", "-c", shell], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr


# --- 13: what the environment did is not a bug of patchgen ------------------

@pytest.mark.parametrize("command", ["scan", "check"])
def test_stdout_on_dev_full(fixture_tree, tmp_path, command):
    tree, folder = _failing_series(fixture_tree, tmp_path)
    argv = ["scan", "--tree", tree] if command == "scan" else \
        ["check", folder, "--tree", tree]
    with open("/dev/full", "w") as full:
        code, _, err = patchgen(*argv, stdout=full)
    assert code == 51, err
    assert "could not be written" in one_sentence(err)


# --- 12: a call site cut off half-way is unparseable, not absent ------------

def test_migrate_c_cut_after_the_poison_test(fixture_tree):
    tree = fixture_tree("e3-v4.14")
    migrate = tree / "mm" / "migrate.c"
    lines = migrate.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines)
               if "if (!test_set_page_hwpoison(page))" in line)
    migrate.write_text("".join(lines[:cut + 1]))
    git(tree, "commit", "-q", "-a", "-m", "cut migrate.c")
    code, out, err = patchgen("apply", "--rule=hwpoison-put-last", "--tree", tree)
    assert code == 6, out + err
    assert f"mm/migrate.c:{cut + 1}" in one_sentence(err)
    assert git(tree, "branch", "--list", BRANCH) == ""


# --- 2, 3, 4: signals, hooks that hang, stale locks --------------------------

def _hang_hook(tree: Path) -> None:
    hook = tree / ".git" / "hooks" / "reference-transaction"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\nsleep 600\n")
    hook.chmod(0o755)


def _no_lock(tree: Path) -> None:
    assert not list((tree / ".git").rglob("*.lock"))
    assert git(tree, "branch", "--list", BRANCH) == ""


def test_a_hook_that_hangs_is_a_bounded_wait(fixture_tree, tmp_path):
    tree = fixture_tree("e3-v4.14")
    _hang_hook(tree)
    code, out, err = patchgen("apply", "--rule=hwpoison-put-last", "--tree", tree,
                              env={"PATCHGEN_UPDATE_REF_TIMEOUT": "7",
                                   "PATCHGEN_CACHE": str(tmp_path / "cache")})
    assert code == 13, err
    assert "still waiting for git update-ref" in err
    assert "did not finish within 7 s" in err and "Traceback" not in err
    _no_lock(tree)
    (tree / ".git" / "hooks" / "reference-transaction").unlink()
    assert patchgen("apply", "--rule=hwpoison-put-last", "--tree", tree)[0] == 0


def _start(argv, env=None):
    full_env = dict(os.environ, PYTHONPATH=str(ROOT))
    full_env.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "patchgen", *map(str, argv)],
                            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_step(log: Path, name: str, proc, timeout=120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and any(line.endswith("\t" + name)
                                for line in log.read_text().splitlines()):
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    pytest.fail(f"never reached {name}")


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_during_a_hook_that_hangs(fixture_tree, tmp_path, signame):
    tree = fixture_tree("e3-v4.14")
    _hang_hook(tree)
    log = tmp_path / "steps"
    proc = _start(["apply", "--rule=hwpoison-put-last",
                   "--tree", tree], env={"PATCHGEN_FAULT_LOG": str(log),
                                                 "PATCHGEN_CACHE": str(tmp_path / "c")})
    _wait_for_step(log, "git update-ref", proc)
    time.sleep(1)  # the hook is running
    started = time.monotonic()
    os.kill(proc.pid, getattr(signal, signame))
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 20
    assert proc.returncode == {"SIGINT": 130, "SIGTERM": 143}[signame], err
    assert b"Traceback" not in err
    _no_lock(tree)
    (tree / ".git" / "hooks" / "reference-transaction").unlink()
    assert patchgen("apply", "--rule=hwpoison-put-last", "--tree", tree)[0] == 0


def test_two_interrupts_and_a_large_blob(fixture_tree, tmp_path):
    """SIGINT while a 60 MB migrate.c is being read, then a second one:
    no hang, no traceback (GitPython's stream finalizer is not used)."""
    tree = fixture_tree("e3-v4.14")
    migrate = tree / "mm" / "migrate.c"
    filler = b"/* " + b"x" * 76 + b" */\n"
    migrate.write_bytes(migrate.read_bytes() + filler * (60 * 1024 * 1024 // 80))
    git(tree, "commit", "-q", "-a", "-m", "a large migrate.c")
    blob = git(tree, "rev-parse", "HEAD:mm/migrate.c").strip()
    # A clean checkout's file is read from disk (same hash, no cat-file):
    # one git is told not to look at makes patchgen read the blob itself.
    migrate.write_bytes(b"not the blob\n")
    git(tree, "update-index", "--assume-unchanged", "mm/migrate.c")
    log = tmp_path / "steps"
    env = {"PATCHGEN_FAULT_LOG": str(log), "PATCHGEN_CACHE": str(tmp_path / "c")}
    first = _start(["apply", "--rule=hwpoison-put-last", "--tree", tree, "--dry-run"], env=env)
    first.communicate(timeout=300)
    steps = [line.split("\t") for line in log.read_text().splitlines()]
    step = next(int(s[0]) for s in steps if len(s) == 3 and s[2] == blob)
    log.unlink()
    proc = _start(["apply", "--rule=hwpoison-put-last", "--tree", tree],
                  env={**env, "PATCHGEN_FAULT_PAUSE": str(step)})
    deadline = time.monotonic() + 60
    while not (log.exists() and "paused" in log.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err and b"Exception ignored" not in err, err
    _no_lock(tree)


def test_the_cache_clone_recovers_its_stale_index_lock(fixture_tree, tmp_path):
    from patchgen.engine.sources import open_git_tree
    from patchgen.kernel.workspace import persistent_workspace
    tree = open_git_tree(fixture_tree("e3-v4.14"))
    base = tree.head()
    workdir = tmp_path / "work"
    with persistent_workspace(tree, base, workdir):
        pass
    (workdir / "src" / ".git" / "index.lock").write_text("")  # a killed checkout
    with persistent_workspace(tree, base, workdir) as workspace:
        assert workspace.head() == base
    assert not (workdir / "src" / ".git" / "index.lock").exists()


@pytest.fixture
def read_only(tmp_path):
    """make(folder): *folder* read-only for real: a read-only bind mount
    when this process may mount (root), else its permissions taken away
    (which stops a user who is not root the same way)."""
    mounts = []

    def make(folder: Path) -> Path:
        view = folder.with_name(folder.name + "-ro")
        view.mkdir()
        bind = subprocess.run(["mount", "--bind", str(folder), str(view)],
                              capture_output=True)
        if bind.returncode == 0:
            mounts.append(view)
            remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(view)],
                                     capture_output=True)
            assert remount.returncode == 0, remount.stderr
            return view
        view.rmdir()
        assert os.geteuid() != 0, "root who cannot mount: no way to make it read-only"
        subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
        mounts.append(("chmod", folder))
        return folder
    yield make
    for mount in mounts:
        if isinstance(mount, tuple):
            subprocess.run(["chmod", "-R", "u+w", str(mount[1])], check=True)
        else:
            subprocess.run(["umount", str(mount)], check=True)


def test_read_only_repository(fixture_tree, tmp_path, read_only):
    tree = fixture_tree("e3-v4.14")
    assert patchgen("apply", "--rule=hwpoison-put-last",
                    "--tree", tree, "--branch", "before")[0] == 0
    view = read_only(tree.parent) / tree.name
    code, out, err = patchgen("apply", "--rule=hwpoison-put-last", "--tree", view)
    assert code == 50, out + err
    assert "read-only" in one_sentence(err)
    # format only reads the repository: it works, into a writable folder ...
    code, out, err = _format(view, tmp_path / "series", "--branch", "before")
    assert code == 0, err
    # ... and says so in one sentence when its output folder is read-only.
    code, out, err = _format(view, view / "series", "--branch", "before")
    assert code == 50, out + err
    assert "cannot write" in one_sentence(err)


def test_demo_dir_that_exists(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep").write_text("mine\n")
    code, out, err = patchgen("demo", "--dir", tmp_path / "mine")
    assert code == 53, err
    assert "already exists" in one_sentence(err)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["keep"]


# --- 8: a full disk -----------------------------------------------------------

@pytest.fixture
def full_disk(tmp_path):
    """make(name): a folder on a small tmpfs that is full (root can mount
    one here); skipped where mounting is impossible, and then the same
    condition is made with a file system that has no room (/dev/full is
    not a folder, so there is no other honest way)."""
    mounts = []

    def make(name: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k",
                                  "tmpfs", str(folder)], capture_output=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
        mounts.append(folder)
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        return folder
    yield make
    for folder in mounts:
        subprocess.run(["umount", str(folder)], check=True)


def test_full_cache_is_44_not_a_failed_check(fixture_tree, tmp_path, full_disk):
    tree = fixture_tree("e3-v4.14")
    assert patchgen("apply", "--rule=hwpoison-put-last", "--tree", tree)[0] == 0
    cache = full_disk("cache")
    code, out, err = patchgen("check", BRANCH, "--tree", tree,
                              env={"PATCHGEN_CACHE": str(cache)})
    assert code == 44, out + err
    assert "cache" in one_sentence(err) and "full" in err


def test_full_tmpdir_does_not_matter(fixture_tree, tmp_path, full_disk):
    tree = fixture_tree("e3-v4.14")
    assert patchgen("apply", "--rule=hwpoison-put-last", "--tree", tree)[0] == 0
    tmp = full_disk("tmp")
    env = {"TMPDIR": str(tmp), "PATCHGEN_CACHE": str(tmp_path / "cache")}
    code, out, err = patchgen("check", BRANCH, "--tree", tree, env=env)
    assert code == 0, out + err
    code, out, err = patchgen("format", "--tree", tree, "-o", tmp_path / "series",
                              "--no-checkpatch", env=env)
    assert code == 0, err


def test_full_output_folder_is_54(fixture_tree, tmp_path, full_disk):
    tree = fixture_tree("e3-v4.14")
    assert patchgen("apply", "--rule=hwpoison-put-last", "--tree", tree)[0] == 0
    out_dir = full_disk("out")
    code, out, err = patchgen("format", "--tree", tree, "-o", out_dir / "series",
                              "--no-checkpatch",
                              env={"PATCHGEN_CACHE": str(tmp_path / "cache")})
    assert code == 54, out + err
    assert "space" in one_sentence(err)
    assert not list(out_dir.rglob(".v*"))


# --- the smaller ones ----------------------------------------------------------

@pytest.mark.parametrize("how", ["GIT_CONFIG_GLOBAL", "GIT_CONFIG_COUNT"])
def test_identity_from_git_config_environment(fixture_tree, tmp_path, how):
    tree = fixture_tree("e3-v4.14")
    git(tree, "config", "--unset", "user.name")
    git(tree, "config", "--unset", "user.email")
    if how == "GIT_CONFIG_GLOBAL":
        config = tmp_path / "gitconfig"
        config.write_text("[user]\n\tname = From Env\n\temail = env@example.org\n")
        env = {"GIT_CONFIG_GLOBAL": str(config)}
    else:
        env = {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "user.name",
               "GIT_CONFIG_VALUE_0": "From Env", "GIT_CONFIG_KEY_1": "user.email",
               "GIT_CONFIG_VALUE_1": "env@example.org",
               "GIT_CONFIG_GLOBAL": "/dev/null"}
    code, out, err = patchgen("apply", "--rule=hwpoison-put-last", "--tree", tree, env=env)
    assert code == 0, err
    assert git(tree, "log", "-1", "--format=%an <%ae>", BRANCH).strip() == \
        "From Env <env@example.org>"


@pytest.mark.parametrize("name,code", [("@{-1}", 3), ("", 3), ("-x", 3),
                                       ("base/sub", 7)])
def test_branch_names_refused_early(fixture_tree, name, code):
    tree = fixture_tree("e3-v4.14")
    git(tree, "checkout", "-q", "-b", "base")
    git(tree, "checkout", "-q", "-")
    got, out, err = patchgen("apply", "--rule=hwpoison-put-last",
                             "--tree", tree, f"--branch={name}")
    assert got == code, err
    one_sentence(err)
    assert git(tree, "for-each-ref", "--format=%(refname)", "refs/heads/").split() \
        == ["refs/heads/base", "refs/heads/master"] or "main" in out


@pytest.mark.parametrize("state", ["rebase-merge", "BISECT_LOG"])
def test_apply_midway_through_a_rebase_or_bisect(fixture_tree, state):
    tree = fixture_tree("e3-v4.14")
    if state == "BISECT_LOG":
        git(tree, "commit", "-q", "--allow-empty", "-m", "second")
        git(tree, "bisect", "start", "HEAD", "HEAD~1")
    else:
        (tree / ".git" / state).mkdir()
    code, out, err = patchgen("apply", "--rule=hwpoison-put-last", "--tree", tree)
    assert code == 4, err
    assert "in the middle of" in one_sentence(err)


def test_a_committed_symlink_is_not_read_as_its_target(fixture_tree):
    tree = fixture_tree("e3-v4.14")
    page_alloc = tree / "mm" / "page_alloc.c"
    page_alloc.rename(tree / "mm" / "real_page_alloc.c")
    page_alloc.symlink_to("real_page_alloc.c")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "symlink")
    code, out, err = patchgen("apply", "--rule=hwpoison-put-last", "--tree", tree)
    assert code == 5, err
    assert "symbolic link" in one_sentence(err)


def test_config_without_build_is_said(fixture_tree, tmp_path):
    tree = fixture_tree("e3-v4.14")
    git(tree, "commit", "-q", "--allow-empty", "-m", "mm: empty")
    fragment = tmp_path / "extra.config"
    fragment.write_text("CONFIG_X=y\n")
    code, out, err = patchgen("check", "HEAD~1..HEAD", "--tree", tree,
                              "--config", fragment)
    assert "--config" in err and "only with --build" in err


@pytest.mark.parametrize("option", [["--timeout", "nan"], ["--timeout", "inf"],
                                    ["--build-timeout", "nan"], ["--memory", "0"]])
def test_verify_refuses_a_timeout_of_nan_and_no_memory(fixture_tree, option):
    tree = fixture_tree("e3-v4.14")
    code, out, err = patchgen("verify", "--tree", tree, *option)
    assert code == 2, err
    assert option[0] in err and "Traceback" not in err


@pytest.mark.slow
def test_an_interrupted_object_write_leaves_no_tmp_obj(fixture_tree, tmp_path):
    """SIGINT while git hash-object writes a 16 MB blob: the write is let
    finish (an unreachable object), never stopped half-way (tmp_obj_*).
    Slow: every run parses the large file."""
    tree = fixture_tree("e3-v4.14")
    migrate = tree / "mm" / "migrate.c"
    filler = b"/* " + b"y" * 76 + b" */\n"
    migrate.write_bytes(migrate.read_bytes() + filler * (16 * 1024 * 1024 // 80))
    git(tree, "commit", "-q", "-a", "-m", "a large migrate.c")
    log = tmp_path / "steps"
    env = {"PATCHGEN_FAULT_LOG": str(log), "PATCHGEN_CACHE": str(tmp_path / "c")}
    first = _start(["apply", "--rule=hwpoison-put-last",
                    "--tree", tree, "--branch", "probe"], env=env)
    first.communicate(timeout=300)
    writes = [int(line.split("\t")[0]) for line in log.read_text().splitlines()
              if line.endswith("\tgit hash-object")]
    git(tree, "branch", "-D", "probe")
    assert writes
    for step in writes:
        log.unlink()
        proc = _start(["apply", "--rule=hwpoison-put-last", "--tree", tree],
                      env={**env, "PATCHGEN_FAULT_PAUSE": str(step)})
        deadline = time.monotonic() + 300
        while not (log.exists() and "paused" in log.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert not list((tree / ".git" / "objects").rglob("tmp_*")), step
        _no_lock(tree)
