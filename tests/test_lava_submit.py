"""verify --lava-submit against a LAVA server's REST API (v0.2).

No LAVA server runs here, so these tests run a local HTTP server on
127.0.0.1 that plays one: it checks every request against LAVA's
documented API (lava_rest_app/base/views.py and v02/views.py in LAVA's
source: the method, the path, the "Authorization: Token ..." header, a
JSON body whose "definition" is a job LAVA's schema would take) and
answers as LAVA does (201 and job_ids on submission, state and health on
the job, paginated test cases, the job log as a YAML list).  A request it
does not expect fails the test.  The job log it serves is one recorded
from a real lava-run boot of the 6.1 tree (tests/data/lava/).
"""

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from patchgen.infra.errors import LavaJobRefused, LavaJobTimeout, LavaServerError
from patchgen.vm.initramfs import Initramfs
from patchgen.vm.lava import case_key, read_log
from patchgen.rules.hwpoison.recipe import VERIFY as RECIPE
from patchgen.vm.kbuild import load_config

SUITE = RECIPE.lava_suite
from patchgen.vm.lava_submit import LavaServer, submit_boot
from patchgen.vm.verify import VerifyOptions

DATA = Path(__file__).resolve().parent / "data" / "lava"
TOKEN = "s3cret-token"


@dataclass
class Lab:
    """What the fake server serves, and what it saw."""

    log: str
    states: list = field(default_factory=lambda: ["Submitted", "Running",
                                                  "Finished"])
    health: str = "Complete"
    refuse: str | None = None
    requests: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    definitions: list = field(default_factory=list)
    page_size: int = 5


def _cases_of(log: str) -> list[dict]:
    """The test cases a LAVA server stores for a job, from its log:
    the fields TestCaseSerializer gives, metadata as YAML."""
    out, seen = [], set()
    # lava-run's records are JSON, but for a "!"-tagged size: YAML then.
    for record in (yaml.safe_load(line) for line in log.splitlines()
                   if line.startswith("{")):
        msg = record.get("msg")
        if record.get("lvl") != "results" or not isinstance(msg, dict):
            continue
        key = (msg.get("definition"), msg.get("case"))
        if key in seen:     # the server stores one case per name
            continue
        seen.add(key)
        out.append({"id": len(out) + 1, "name": msg.get("case"),
                    "result": msg.get("result"),
                    "metadata": yaml.safe_dump(msg)})
    return out


def make_handler(lab: Lab):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _check_auth(self) -> bool:
            if self.headers.get("Authorization") != f"Token {TOKEN}":
                lab.problems.append(f"{self.command} {self.path}: "
                                    "no 'Authorization: Token ...' header")
                self._send(401, {"detail": "Invalid token."})
                return False
            return True

        def _send(self, status, body, content_type="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            lab.requests.append(("POST", self.path))
            if self.path != "/api/v0.2/jobs/":
                lab.problems.append(f"POST to {self.path}")
                return self._send(404, {"detail": "Not found."})
            if not self._check_auth():
                return
            if self.headers.get("Content-Type") != "application/json":
                lab.problems.append("submission is not JSON")
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length))
            if set(body) != {"definition"} or not isinstance(
                    body["definition"], str):
                lab.problems.append(f"submission body {sorted(body)}")
            job = yaml.safe_load(body["definition"])
            lab.definitions.append(job)
            for key in ("device_type", "job_name", "timeouts", "visibility",
                        "actions"):
                if key not in job:
                    lab.problems.append(f"job without {key}")
            if lab.refuse:
                return self._send(400, {"message": "Problem with submitted "
                                        f"job data: {lab.refuse}"})
            return self._send(201, {"message": "job(s) successfully "
                                    "submitted", "job_ids": [4242]})

        def do_GET(self):
            lab.requests.append(("GET", self.path))
            if not self._check_auth():
                return
            path, _, query = self.path.partition("?")
            if path == "/api/v0.2/jobs/4242/":
                state = lab.states.pop(0) if len(lab.states) > 1 \
                    else lab.states[0]
                health = lab.health if state == "Finished" else "Unknown"
                return self._send(200, {"id": 4242, "state": state,
                                        "health": health,
                                        "requested_device_type": "qemu"})
            if path == "/api/v0.2/jobs/4242/tests/":
                cases = _cases_of(lab.log)
                page = int(query.partition("=")[2] or 1) if query else 1
                size = lab.page_size
                chunk = cases[(page - 1) * size:page * size]
                more = page * size < len(cases)
                host = f"http://{self.headers['Host']}"
                return self._send(200, {
                    "count": len(cases),
                    "next": (f"{host}/api/v0.2/jobs/4242/tests/?page="
                             f"{page + 1}") if more else None,
                    "previous": None, "results": chunk})
            if path == "/api/v0.2/jobs/4242/logs/":
                text = "\n".join("- " + line for line in lab.log.splitlines()
                                 if line.startswith("{")) + "\n"
                return self._send(200, text.encode(), "application/yaml")
            lab.problems.append(f"GET {self.path}")
            return self._send(404, {"detail": "Not found."})

    return Handler


@pytest.fixture
def lab():
    """A LAVA-shaped server on 127.0.0.1; yields (Lab, URL)."""
    state = Lab(log=(DATA / "pass-6.1-lava-run.log").read_text())
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def images(tmp_path):
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(b"a kernel the lab fetches by URL")
    initrd = tmp_path / "verify.cpio"
    initrd.write_bytes(b"an initramfs")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return kernel, Initramfs(initrd, "0" * 64, ""), run_dir


OPTIONS = VerifyOptions(tree=Path("/nonexistent"), boot_timeout=90)
CONFIG = load_config(RECIPE)


def test_submit_wait_and_read_back_a_pass(lab, images):
    state, url = lab
    messages = []
    boot = submit_boot(LavaServer(url, TOKEN),
                       url_prefix="https://files.example/run/", poll=0.01,
                       progress=messages.append)
    booted, verdict = boot(*images, "tip", OPTIONS, CONFIG)
    assert state.problems == []
    assert verdict.passed, verdict.reasons
    expected = {c.name for c in read_log(state.log).guest_cases}
    assert {c.name for c in verdict.checks} == expected
    # The API's order: submit, poll until Finished, results, log.
    assert state.requests[0] == ("POST", "/api/v0.2/jobs/")
    polls = [r for r in state.requests if r == ("GET", "/api/v0.2/jobs/4242/")]
    assert len(polls) == 3
    assert ("GET", "/api/v0.2/jobs/4242/tests/?page=2") in state.requests
    assert ("GET", "/api/v0.2/jobs/4242/logs/") in state.requests
    # Progress: the job's id and each state it went through.
    assert any("submitted as LAVA job 4242" in m for m in messages)
    assert any("Running" in m for m in messages)
    assert booted.command.endswith("/scheduler/job/4242")
    (job,) = state.definitions
    images_ = job["actions"][0]["deploy"]["images"]
    assert images_["kernel"]["url"] == "https://files.example/run/tip-bzImage"
    assert booted.serial_log.read_text().count("PATCHGEN: check ") >= 8


def test_a_failed_case_in_the_labs_results_fails_the_verdict(lab, images):
    state, url = lab
    state.log = state.log.replace(
        '"case": "unpoison_leak", "definition": "patchgen-soft-offline", '
        '"extra": {"test_case_id": "unpoison-leak"}, "level": "3.1", '
        '"result": "pass"',
        '"case": "unpoison_leak", "definition": "patchgen-soft-offline", '
        '"extra": {"test_case_id": "unpoison-leak"}, "level": "3.1", '
        '"result": "fail"')
    assert '"result": "fail"' in state.log
    boot = submit_boot(LavaServer(url, TOKEN), poll=0.01, progress=None)
    _, verdict = boot(*images, "tip", OPTIONS, CONFIG)
    assert not verdict.passed
    assert "LAVA recorded check unpoison-leak as failed" in verdict.reasons


def test_a_lab_that_refuses_the_job(lab, images):
    state, url = lab
    state.refuse = "Specified device type not found"
    boot = submit_boot(LavaServer(url, TOKEN), poll=0.01, progress=None)
    with pytest.raises(LavaJobRefused) as caught:
        boot(*images, "tip", OPTIONS, CONFIG)
    assert caught.value.exit_code == 62
    message = str(caught.value)
    assert "refused the job (HTTP 400)" in message
    assert "Specified device type not found" in message
    assert "\n" not in message


def test_a_wrong_token_is_refused(lab, images):
    state, url = lab
    boot = submit_boot(LavaServer(url, "wrong"), poll=0.01, progress=None)
    with pytest.raises(LavaJobRefused) as caught:
        boot(*images, "tip", OPTIONS, CONFIG)
    assert "the token was not accepted" in str(caught.value)


def test_a_job_that_times_out_in_the_lab(lab, images):
    state, url = lab
    state.states = ["Submitted", "Running"]        # never Finished
    boot = submit_boot(LavaServer(url, TOKEN), wait=0.3, poll=0.05,
                       progress=None)
    with pytest.raises(LavaJobTimeout) as caught:
        boot(*images, "tip", OPTIONS, CONFIG)
    assert caught.value.exit_code == 63
    assert "LAVA job 4242" in str(caught.value)
    assert "still Running" in str(caught.value)
    assert state.problems == []


def test_no_server_at_the_url(images):
    boot = submit_boot(LavaServer("http://127.0.0.1:9", TOKEN), poll=0.01,
                       progress=None)
    with pytest.raises(LavaServerError) as caught:
        boot(*images, "tip", OPTIONS, CONFIG)
    assert caught.value.exit_code == 64
    assert "cannot reach the LAVA server" in str(caught.value)


def test_token_env_unset_is_one_sentence(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys
    from conftest import ROOT
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PATCHGEN_TEST_NO_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-m", "patchgen", "verify", "--tree", str(tmp_path),
         "--lava-submit", "http://127.0.0.1:9", "--token-env",
         "PATCHGEN_TEST_NO_TOKEN"], capture_output=True, text=True,
        timeout=60, env=env)
    assert result.returncode == 65
    assert "PATCHGEN_TEST_NO_TOKEN is not set" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_case_names_match_lavas_spelling_of_the_guests():
    cases = _cases_of((DATA / "pass-6.1-lava-run.log").read_text())
    guest = [c for c in cases if yaml.safe_load(c["metadata"])["definition"]
             == SUITE]
    assert guest and all(c["name"] == case_key(c["name"]) for c in guest)
