"""patchgen format on fixture trees: the files, the cover letter, the
recipients, the user's tree left alone, and a real `git am` round trip."""

import email
import email.policy
import json
import re
from pathlib import Path

import pytest

from formatkit import (applied_fixture, cover_file, fix_dates, git,
                       patch_files, run_cli, series_fixtures)
from formatkit import e3  # noqa: F401  (a fixture)
from patchgen.engine.fixtures import materialize
from patchgen.series.recipients import from_maintainers, parse_maintainers, pattern_matches
from patchgen.engine.registry import get_rule
from patchgen.engine.sources import makefile_version, version_text
from patchgen.engine.sources import open_git_tree

TOPIC = "hwpoison-put-last"


def headers(path: Path):
    text = path.read_text(encoding="utf-8").split("\n", 1)[1]
    return email.message_from_string(text, policy=email.policy.default)


def subject_of(path: Path) -> str:
    return " ".join(str(headers(path)["Subject"]).split())



def format_ok(capsys, tree, out, *extra):
    code, stdout, stderr = run_cli(capsys, "format", "--tree", tree, "-o", out,
                                   "--no-checkpatch", *extra)
    assert code == 0, stderr
    return stdout, stderr


# --- the rule's series, every fixture era -------------------------------------

@pytest.mark.parametrize("fixture", series_fixtures())
def test_rule_series_is_complete_and_threaded(fixture, tmp_path, capsys, monkeypatch):
    fix_dates(monkeypatch)
    tree = applied_fixture(fixture, tmp_path / fixture)
    assert tree is not None, f"scan said rewrite but apply made no series for {fixture}"
    stdout, _ = format_ok(capsys, tree, tmp_path / "series")
    folder = tmp_path / "series" / TOPIC / "v1"
    cover = cover_file(folder)
    patches = patch_files(folder)
    base = git(tree, "rev-parse", "master").strip()
    commits = git(tree, "rev-list", "--reverse", f"master..{TOPIC}").split()
    assert len(patches) == len(commits) >= 2 and cover is not None

    everything = "".join(p.read_text() for p in folder.iterdir())
    assert "*** SUBJECT HERE ***" not in everything
    assert "*** BLURB HERE ***" not in everything
    # No Cc: stable for this rule (mainline fixed the race differently).
    assert "stable@vger.kernel.org" not in everything + stdout

    # The subject comes from the rule's cover template, the version from
    # the base's Makefile, the eras from a scan of the base.
    rule = get_rule("hwpoison-put-last")
    template_subject = (Path(__file__).parent.parent / "templates" /
                        rule.cover_template).read_text().split("#}\n", 1)[1] \
        .split("\n", 1)[0]
    assert subject_of(cover) == f"[PATCH 0/{len(patches)}] {template_subject}"
    report = rule.scan(open_git_tree(tree).at(base))
    body = cover.read_text()
    flat = " ".join(body.split())
    assert f"Linux {report.kernel_version}" in flat
    assert f"call site {report.facts['call site']}, free path " \
           f"{report.facts['free path']}" in flat
    assert "commit d4ae9916ea29" in flat and "commit 79f5f8fab482" in flat
    assert "Link: https://lore.kernel.org/r/5704C168.1060803@suse.cz" in body
    assert re.search(rf"^base-commit: {base}$", body, re.M)
    assert re.search(r"^change-id: \d{8}-hwpoison-put-last-[0-9a-f]{12}$", body, re.M)
    # A fixture is a local import: the letter names the upstream version.
    version = version_text(makefile_version(open_git_tree(tree).at(base)))
    assert f"local import of Linux {version}" in flat
    # Shortlog and diffstat are git's own.
    for commit in commits:
        assert "  " + git(tree, "log", "-1", "--format=%s", commit).strip() in body
    assert re.search(r"^ \d+ files? changed", body, re.M)

    # Threading: every patch replies to the cover letter; numbering n/N.
    cover_id = str(headers(cover)["Message-Id"])
    for number, patch in enumerate(patches, 1):
        mail = headers(patch)
        assert str(mail["In-Reply-To"]) == cover_id
        subject = git(tree, "log", "-1", "--format=%s", commits[number - 1]).strip()
        assert subject_of(patch) == f"[PATCH {number}/{len(patches)}] {subject}"


def test_git_am_round_trip_on_every_fixture(tmp_path, capsys, monkeypatch):
    """Real git am of the written files on the base gives the branch's tree."""
    fix_dates(monkeypatch)
    done = 0
    for fixture in series_fixtures():
        tree = applied_fixture(fixture, tmp_path / fixture)
        if tree is None:
            continue
        out = tmp_path / f"series-{fixture}"
        format_ok(capsys, tree, out)
        folder = out / TOPIC / "v1"
        clone = tmp_path / f"am-{fixture}"
        git(tmp_path, "clone", "-q", str(tree), str(clone))
        git(clone, "config", "user.name", "Someone Else")
        git(clone, "config", "user.email", "else@example.org")
        git(clone, "checkout", "-q", "-b", "am", "master")
        git(clone, "am", "-q", *[str(p) for p in patch_files(folder)])
        assert git(clone, "rev-parse", "HEAD^{tree}") == \
            git(tree, "rev-parse", f"{TOPIC}^{{tree}}")
        # Same messages too (git am keeps author and message).
        assert git(clone, "log", "--format=%an <%ae>%n%B", "master..HEAD") == \
            git(tree, "log", "--format=%an <%ae>%n%B", f"master..{TOPIC}")
        done += 1
    assert done >= 1


def test_user_tree_branch_index_and_refs_untouched(e3, tmp_path, capsys):
    (e3 / "mm" / "migrate.c").write_text("/* local edit */\n")
    git(e3, "add", "mm/migrate.c")
    (e3 / "untracked.txt").write_text("mine\n")
    before = {
        "head": git(e3, "symbolic-ref", "HEAD"),
        "refs": git(e3, "for-each-ref"),
        "status": git(e3, "status", "--porcelain=v1", "--untracked-files=all"),
        "index": git(e3, "ls-files", "-s"),
        "diff": git(e3, "diff", "--cached"),
    }
    stdout, stderr = format_ok(capsys, e3, tmp_path / "series")
    assert "uncommitted changes" in stderr and "format reads commits only" in stderr
    after = {
        "head": git(e3, "symbolic-ref", "HEAD"),
        "refs": git(e3, "for-each-ref"),
        "status": git(e3, "status", "--porcelain=v1", "--untracked-files=all"),
        "index": git(e3, "ls-files", "-s"),
        "diff": git(e3, "diff", "--cached"),
    }
    assert before == after
    # The local edit is not in the series: the round trip is the branch's.
    assert "local edit" not in "".join(
        p.read_text() for p in (tmp_path / "series" / TOPIC / "v1").iterdir())


def test_send_email_line_is_printed_not_run(e3, tmp_path, capsys):
    stdout, _ = format_ok(capsys, e3, tmp_path / "series", "--to",
                          "Maintainer <m@example.org>", "--cc", "list@example.org",
                          "--cc", "m@example.org")
    line = [l for l in stdout.splitlines() if l.strip().startswith("git send-email")]
    # The recipients are in the files' headers: the line needs no flags.
    assert line == [f"  git send-email {tmp_path / 'series' / TOPIC / 'v1'}"]
    assert "nothing was sent" in stdout
    for path in (tmp_path / "series" / TOPIC / "v1").iterdir():
        mail = headers(path)
        assert str(mail["To"]) == "Maintainer <m@example.org>", path.name
        # An address already in To: is not repeated in Cc:.
        assert "m@example.org" not in str(mail["Cc"]).replace("<m@", "")
        assert "list@example.org" in str(mail["Cc"])
    # No recipients from the tree: it has no get_maintainer.pl, no MAINTAINERS.
    assert "neither scripts/get_maintainer.pl nor MAINTAINERS" in stdout


def test_state_file_records_the_version(e3, tmp_path, capsys):
    format_ok(capsys, e3, tmp_path / "series")
    state = json.loads((tmp_path / "series" / TOPIC / "series.json").read_text())
    (record,) = state["versions"]
    assert record["base"] == git(e3, "rev-parse", "master").strip()
    assert record["tip"] == git(e3, "rev-parse", TOPIC).strip()
    assert record["commits"] == git(e3, "rev-list", "--reverse", f"master..{TOPIC}").split()
    cover = tmp_path / "series" / TOPIC / "v1" / record["files"][0]
    assert f"<{record['message_id']}>" == str(headers(cover)["Message-Id"])
    assert f"change-id: {state['change_id']}" in cover.read_text()


def test_rerun_replaces_only_that_version(e3, tmp_path, capsys):
    out = tmp_path / "series"
    format_ok(capsys, e3, out)
    format_ok(capsys, e3, out, "-v", "2")
    v2 = {p.name: p.read_bytes() for p in (out / TOPIC / "v2").iterdir()}
    state = json.loads((out / TOPIC / "series.json").read_text())
    (out / TOPIC / "v1" / "0000-cover-letter.patch").write_text("stale\n")
    stdout, stderr = format_ok(capsys, e3, out, "-v", "1")
    assert "replacing that folder only" in stderr
    assert stdout.startswith("replaced ")
    assert (out / TOPIC / "v1" / "0000-cover-letter.patch").read_text() != "stale\n"
    assert {p.name: p.read_bytes() for p in (out / TOPIC / "v2").iterdir()} == v2
    again = json.loads((out / TOPIC / "series.json").read_text())
    assert again["change_id"] == state["change_id"]
    assert [v["version"] for v in again["versions"]] == [1, 2]
    assert not [p for p in (out / TOPIC).iterdir() if p.name.startswith(".")]


def test_rfc_prefix(e3, tmp_path, capsys):
    format_ok(capsys, e3, tmp_path / "series", "--rfc")
    folder = tmp_path / "series" / TOPIC / "v1"
    assert subject_of(cover_file(folder)).startswith("[RFC PATCH 0/7] ")
    assert subject_of(patch_files(folder)[0]).startswith("[RFC PATCH 1/7] ")


# --- a developer's own commits ----------------------------------------------

def commit_file(repo, path, text, subject, body="", add_force=False):
    full = Path(repo) / path
    full.parent.mkdir(parents=True, exist_ok=True)
    with open(full, "a") as out:
        out.write(text)
    git(repo, "add", *(["-f"] if add_force else []), path)
    name = git(repo, "config", "user.name").strip()
    email_ = git(repo, "config", "user.email").strip()
    message = f"{subject}\n\n{body}\n\nSigned-off-by: {name} <{email_}>\n"
    git(repo, "commit", "-q", "-F", "-", input=message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def dev_tree(tmp_path, monkeypatch):
    fix_dates(monkeypatch)
    tree = materialize("e3-v4.14", tmp_path / "dev")
    git(tree, "checkout", "-q", "-b", "my-fixes")
    commit_file(tree, "mm/migrate.c", "/* first */\n",
                "mm/migrate: note the first thing",
                "Explain why the first thing is needed in this paragraph.")
    commit_file(tree, "mm/page_alloc.c", "/* second */\n",
                "mm/page_alloc: note the second thing",
                "The second change follows from the first.")
    git(tree, "checkout", "-q", "master")
    return tree


def test_developer_series_gets_generic_cover(dev_tree, tmp_path, capsys):
    stdout, _ = format_ok(capsys, dev_tree, tmp_path / "series",
                          "--range", "master..my-fixes")
    folder = tmp_path / "series" / "my-fixes" / "v1"
    cover = cover_file(folder)
    assert subject_of(cover) == "[PATCH 0/2] mm: my fixes"
    body = cover.read_text()
    assert "This series of 2 patches is for Linux 4.14.5:" in body
    assert "1/2 mm/migrate: note the first thing" in body
    assert "Explain why the first thing is needed in this paragraph." in body
    assert "2/2 mm/page_alloc: note the second thing" in body
    assert "put together by patchgen" in body
    assert "generic template" in stdout
    assert "*** " not in body
    assert len(patch_files(folder)) == 2


def test_branch_without_base_needs_one(dev_tree, tmp_path, capsys):
    code, _, err = run_cli(capsys, "format", "--tree", dev_tree, "-o",
                           tmp_path / "series", "--branch", "my-fixes")
    assert code == 26 and "--base" in err
    format_ok(capsys, dev_tree, tmp_path / "series", "--branch", "my-fixes",
              "--base", "master")
    assert len(patch_files(tmp_path / "series" / "my-fixes" / "v1")) == 2


def test_branch_with_upstream_starts_at_merge_base(dev_tree, tmp_path, capsys):
    git(dev_tree, "branch", "-q", "--set-upstream-to=master", "my-fixes")
    stdout, _ = format_ok(capsys, dev_tree, tmp_path / "series", "--branch", "my-fixes")
    assert "upstream" in stdout.splitlines()[0]
    assert len(patch_files(tmp_path / "series" / "my-fixes" / "v1")) == 2


def test_single_patch_has_no_cover_letter(dev_tree, tmp_path, capsys):
    format_ok(capsys, dev_tree, tmp_path / "series", "--range",
              "master..my-fixes~1", "--topic", "one")
    folder = tmp_path / "series" / "one" / "v1"
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["0001-mm-migrate-note-the-first-thing.patch"]
    text = (folder / files[0]).read_text()
    assert subject_of(folder / files[0]) == "[PATCH] mm/migrate: note the first thing"
    assert re.search(r"^base-commit: [0-9a-f]{40}$\n^change-id: ", text, re.M)
    # The base note sits below ---, where git am drops it.
    below = text.split("\n---\n", 1)[1]
    assert below.startswith("The base-commit below is a local import of Linux 4.14.5")


def test_custom_cover_template(dev_tree, tmp_path, capsys):
    template = tmp_path / "cover.j2"
    template.write_text("{{ prefix }}: fix two things in {{ kernel_version }}\n\n"
                        "{% for c in commits %}- {{ c.subject }}\n{% endfor %}")
    format_ok(capsys, dev_tree, tmp_path / "series", "--range", "master..my-fixes",
              "--cover-template", template)
    cover = cover_file(tmp_path / "series" / "my-fixes" / "v1")
    assert subject_of(cover) == "[PATCH 0/2] mm: fix two things in Linux 4.14.5"
    assert "- mm/migrate: note the first thing\n- mm/page_alloc: note the second" \
        in cover.read_text()


# --- recipients ---------------------------------------------------------------

MAINTAINERS = """\
List of maintainers (a preamble, as in real files)
	M: *Mail* patch to: FullName <address@domain>

MEMORY MANAGEMENT
M:	Mm Maintainer <mm@example.org>
R:	Mm Reviewer <reviewer@example.org> (PAGE ALLOC)
L:	linux-mm@example.org
S:	Maintained
F:	include/linux/mm.h
F:	mm/
X:	mm/migrate.c

PAGE MIGRATION
M:	Migration Person <migrate@example.org>
L:	migration@example.org (moderated for non-subscribers)
F:	mm/migrate*

NETWORKING
M:	Net Person <net@example.org>
F:	net/

THE REST
M:	Top Person <top@example.org>
L:	linux-kernel@example.org
F:	*
F:	*/
"""


def test_recipients_from_maintainers_file(e3, tmp_path, capsys):
    git(e3, "checkout", "-q", "master")
    (e3 / "MAINTAINERS").write_text(MAINTAINERS)
    git(e3, "add", "MAINTAINERS")
    git(e3, "commit", "-q", "-m", "Add MAINTAINERS")
    git(e3, "rebase", "-q", "master", TOPIC)
    git(e3, "checkout", "-q", "master")
    stdout, _ = format_ok(capsys, e3, tmp_path / "series")
    assert "MAINTAINERS at" in stdout and "parsed by patchgen" in stdout
    state = json.loads((tmp_path / "series" / TOPIC / "series.json").read_text())
    (record,) = state["versions"]
    cover = record["recipients"][record["files"][0]]
    trailers = ["Vlastimil Babka <vbabka@suse.cz>"]   # the rule's Suggested-by:
    # mm/page_alloc.c and mm/memory-failure.c: MEMORY MANAGEMENT; mm/migrate.c
    # is excluded there (X:) and belongs to PAGE MIGRATION.
    assert cover["to"] == ["Mm Maintainer <mm@example.org>",
                           "Migration Person <migrate@example.org>"]
    assert sorted(a for a in cover["cc"] if a not in trailers) == sorted([
        "Mm Reviewer <reviewer@example.org>", "linux-mm@example.org",
        "migration@example.org", "linux-kernel@example.org"])
    assert "Top Person" not in stdout and "Net Person" not in stdout
    # Per patch: the migrate.c patch goes to PAGE MIGRATION only.
    migrate = [name for name in record["files"] if "mm-migrate" in name]
    assert len(migrate) == 1
    assert record["recipients"][migrate[0]]["to"] == [
        "Migration Person <migrate@example.org>"]


def test_maintainers_patterns():
    assert pattern_matches("mm/", "mm/migrate.c")
    assert pattern_matches("mm/", "mm/kasan/common.c")
    assert pattern_matches("mm/*.c", "mm/migrate.c")
    assert not pattern_matches("mm/*.c", "mm/kasan/common.c")
    assert not pattern_matches("mm/*", "mm/kasan/common.c")
    assert pattern_matches("mm/kasan", "mm/kasan/common.c", is_dir=lambda p: True)
    assert not pattern_matches("mm/kasan", "mm/kasan/common.c")
    assert pattern_matches("include/linux/mm?.h", "include/linux/mm.h") is False
    assert pattern_matches("include/linux/m?.h", "include/linux/mm.h")
    # get_maintainer.pl matches F: as a prefix at the same depth; so does
    # patchgen, so that both name the same people.
    assert pattern_matches("mm/migrate.c", "mm/migrate.cc")
    assert not pattern_matches("mm/migrate.c", "xmm/migrate.c")
    sections = parse_maintainers(MAINTAINERS)
    assert [s.title for s in sections] == ["MEMORY MANAGEMENT", "PAGE MIGRATION",
                                           "NETWORKING", "THE REST"]
    found = from_maintainers(MAINTAINERS, ["net/core/dev.c"], "test")
    assert found.to == ("Net Person <net@example.org>",)
    assert found.cc == ("linux-kernel@example.org",)


def test_user_git_settings_do_not_change_the_files(tmp_path, capsys, monkeypatch):
    """The same series with a global config that changes what git
    format-patch writes by default: the files come out the same."""
    from formatkit import normalise
    fix_dates(monkeypatch)
    tree = applied_fixture("e3-v4.14", tmp_path / "e3")
    format_ok(capsys, tree, tmp_path / "plain")
    config = tmp_path / "gitconfig"
    config.write_text(
        "[diff]\n\tnoprefix = true\n\tmnemonicPrefix = true\n\trelative = true\n"
        "[format]\n\tsignOff = true\n\tcoverLetter = true\n\tnumbered = false\n"
        "\theaders = \"X-Extra: yes\\n\"\n\tsuffix = .txt\n"
        "\tcoverFromDescription = subject\n\tnotes = true\n\tattach = true\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    assert git(tree, "config", "--get", "format.suffix").strip() == ".txt"
    format_ok(capsys, tree, tmp_path / "configured")
    plain = tmp_path / "plain" / TOPIC / "v1"
    configured = tmp_path / "configured" / TOPIC / "v1"
    assert sorted(p.name for p in plain.iterdir()) == \
        sorted(p.name for p in configured.iterdir())
    for path in plain.iterdir():
        assert normalise((configured / path.name).read_text()) == \
            normalise(path.read_text()), path.name
