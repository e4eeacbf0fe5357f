"""check --post: the results to a patchwork, through its REST API.

Patchwork is not installable from the registries here, so these tests run
a local HTTP server on 127.0.0.1 that plays one: it checks every request
against patchwork's documented API 1.2 (patchwork/api/check.py and
filters.py in patchwork's source: GET /api/1.2/patches/?msgid= with the
Message-Id WITHOUT angle brackets, POST /api/1.2/patches/{id}/checks/
with an "Authorization: Token ..." header and a JSON body whose state is
one of pending, success, warning, fail, whose context is a slug, whose
target_url is null or an http(s) URL (a Django URLField), whose
description fits its 255 characters), and answers as patchwork does (a
list of patches, 201 and the check).  A request it does not expect fails
the test.  The series is a real format-patch series of a fixture tree.
"""

import json
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from formatkit import applied_fixture, git

TOKEN = "pw-s3cret"
STATES = ("pending", "success", "warning", "fail")
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")


@dataclass
class Patchwork:
    patches: dict = field(default_factory=dict)    # msgid (bare) -> id
    checks: list = field(default_factory=list)     # (patch id, body)
    problems: list = field(default_factory=list)


def _server(pw: Patchwork):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path != "/api/1.2/patches/":
                pw.problems.append(f"GET {self.path}")
                return self._answer(404, {"detail": "Not found."})
            (msgid,) = parse_qs(url.query)["msgid"]
            if msgid.startswith("<") or msgid.endswith(">"):
                pw.problems.append(f"msgid with brackets: {msgid}")
            found = pw.patches.get(msgid)
            self._answer(200, [] if found is None else [
                {"id": found, "msgid": f"<{msgid}>", "name": "a patch"}])

        def do_POST(self):
            match = re.fullmatch(r"/api/1\.2/patches/(\d+)/checks/", self.path)
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            if not match:
                pw.problems.append(f"POST {self.path}")
                return self._answer(404, {"detail": "Not found."})
            if self.headers.get("Authorization") != f"Token {TOKEN}":
                return self._answer(403, {"detail": "Authentication credentials "
                                                    "were not provided."})
            if self.headers.get("Content-Type") != "application/json":
                pw.problems.append(f"content type {self.headers.get('Content-Type')}")
            body = json.loads(raw)
            wrong = []
            if body.get("state") not in STATES:
                wrong.append(f"state {body.get('state')!r}")
            if not SLUG.match(body.get("context") or ""):
                wrong.append(f"context {body.get('context')!r}")
            url = body.get("target_url")
            if url is not None and not re.match(r"^https?://", url):
                wrong.append(f"target_url {url!r}")
            if len(body.get("description") or "") > 255:
                wrong.append("description over 255 characters")
            if int(match.group(1)) not in pw.patches.values():
                return self._answer(404, {"detail": "Not found."})
            if wrong:
                pw.problems.append("; ".join(wrong))
                return self._answer(400, {"detail": wrong})
            pw.checks.append((int(match.group(1)), body))
            self._answer(201, dict(body, id=len(pw.checks)))
    return Handler


@pytest.fixture
def patchwork():
    pw = Patchwork()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _server(pw))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield pw, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    assert not pw.problems, pw.problems


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    root = tmp_path_factory.mktemp("post")
    tree = applied_fixture("e3-v4.14", root / "tree")
    git(tree, "format-patch", "-q", "--cover-letter", "--thread=shallow",
        "--base=master", "-o", str(root / "v1"), "master..hwpoison-put-last")
    ids = {}
    for path in sorted((root / "v1").iterdir()):
        found = re.search(r"^Message-Id: <([^>]+)>", path.read_text(), re.M)
        ids[path.name] = found.group(1)
    return tree, root / "v1", ids


def patchgen(*args, env=None):
    return subprocess.run([sys.executable, "-m", "patchgen", *map(str, args)],
                          capture_output=True, text=True, timeout=600,
                          env=env)


def _env(**extra):
    import os
    return dict(os.environ, **extra)


def test_every_result_is_posted_on_its_patch(series, patchwork):
    tree, folder, ids = series
    pw, url = patchwork
    patches = [i for name, i in ids.items() if not name.startswith("0000")]
    pw.patches.update({msgid: 100 + n for n, msgid in enumerate(patches)})
    done = patchgen("check", folder, "--tree", tree, "--json", "--post", url,
                    "--token-env", "PW_TOKEN",
                    "--target-url", "https://ci.example.org/{msgid}/{check}",
                    env=_env(PW_TOKEN=TOKEN))
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    per_patch = [r for r in report["results"] if r["patch"] is not None]
    series_level = [r for r in report["results"] if r["patch"] is None]
    assert per_patch and series_level
    # Ids without brackets; a series-level result carries the cover's.
    assert {r["message_id"] for r in series_level} == {ids["0000-cover-letter.patch"]}
    assert all(r["message_id"] in patches for r in per_patch)
    # One check per per-patch result, and each series-level one on all 7.
    assert len(pw.checks) == len(per_patch) + 7 * len(series_level)
    posted = {(pid, body["context"]) for pid, body in pw.checks}
    for result in per_patch:
        assert (pw.patches[result["message_id"]], result["context"]) in posted
    for result in series_level:
        assert all((pid, result["context"]) in posted for pid in pw.patches.values())
    first = pw.checks[0][1]
    assert first["target_url"].startswith("https://ci.example.org/")
    assert f"posted {len(pw.checks)} checks on 7 patches" in done.stderr


def test_without_a_target_url_the_log_is_pointed_at_and_not_posted(
        series, patchwork, tmp_path):
    tree, folder, ids = series
    pw, url = patchwork
    pw.patches.update({msgid: 7 + n for n, msgid in enumerate(ids.values())})
    log = tmp_path / "check.log"
    done = patchgen("check", folder, "--tree", tree, "--json", "--post", url,
                    "--token-env", "PW_TOKEN", "--log", log,
                    env=_env(PW_TOKEN=TOKEN))
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    assert {r["target_url"] for r in report["results"]} == {log.as_uri()}
    assert log.read_text().startswith(f"patchgen check: {folder} (folder, 7 patches")
    # patchwork's target_url takes http(s) only: null is posted instead.
    assert pw.checks and all(body["target_url"] is None for _, body in pw.checks)


def test_what_patchwork_refuses_gets_its_own_exit_code(series, patchwork):
    tree, folder, ids = series
    pw, url = patchwork
    # No token in the environment: refused before any work.
    done = patchgen("check", folder, "--tree", tree, "--post", url,
                    "--token-env", "PW_TOKEN_UNSET", env=_env())
    assert done.returncode == 37 and "PW_TOKEN_UNSET is unset" in done.stderr
    # A token patchwork refuses.
    pw.patches.update({msgid: 1 + n for n, msgid in enumerate(ids.values())})
    done = patchgen("check", folder, "--tree", tree, "--post", url,
                    "--token-env", "PW_TOKEN", env=_env(PW_TOKEN="wrong"))
    assert done.returncode == 35, done.stderr
    assert "HTTP 403" in done.stderr and "Traceback" not in done.stderr
    # A series patchwork has not seen.
    pw.patches.clear()
    done = patchgen("check", folder, "--tree", tree, "--post", url,
                    "--token-env", "PW_TOKEN", env=_env(PW_TOKEN=TOKEN))
    assert done.returncode == 36
    assert "has no patch with Message-Id <" in done.stderr
    # Nobody listening.
    done = patchgen("check", folder, "--tree", tree, "--post",
                    "http://127.0.0.1:9", "--token-env", "PW_TOKEN",
                    env=_env(PW_TOKEN=TOKEN))
    assert done.returncode == 35 and "cannot reach patchwork" in done.stderr
    # A --target-url with a field check does not fill in is a usage error.
    done = patchgen("check", folder, "--tree", tree, "--target-url",
                    "https://ci.example.org/{run.__class__}")
    assert done.returncode == 2 and "not {run.__class__}" in done.stderr
