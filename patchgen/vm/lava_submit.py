"""Submit verify's LAVA jobs to a LAVA server and read the results back.

LAVA's REST API, version 0.2 (lava_rest_app in LAVA's source):

- POST /api/v0.2/jobs/ with {"definition": "<job YAML>"}: 201 and
  {"message": "job(s) successfully submitted", "job_ids": [N]}, or 400 and
  {"message": "Problem with submitted job data: ..."};
- GET /api/v0.2/jobs/N/: the job, with "state" (Submitted, Scheduling,
  Scheduled, Running, Canceling, Finished) and "health" (Unknown,
  Complete, Incomplete, Canceled);
- GET /api/v0.2/jobs/N/tests/: its test cases, paginated ("results",
  "next"), each with "name", "result" and "metadata" (YAML, with the
  suite as "definition");
- GET /api/v0.2/jobs/N/logs/: the job log, a YAML list of the records
  lava-run prints.

Every request carries "Authorization: Token <token>" when a token is
given.  The standard library's urllib is enough; nothing here needs a
session.
"""

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from patchgen.vm.boot import BootResult
from patchgen.infra.errors import LavaJobRefused, LavaJobTimeout, LavaServerError
from patchgen.vm.lava import (LAVA_SUITE, LavaCase, LavaOutcome, dump_yaml,
                              lava_verdict, read_log, settings_for, suite_of,
                              write_job)

API = "/api/v0.2"
POLL_SECONDS = 10.0
REQUEST_TIMEOUT = 60.0
RESULT_CODES = {0: "pass", 1: "fail", 2: "skip", 3: "unknown"}


@dataclass(frozen=True)
class LavaServer:
    url: str
    token: str | None = None

    def _request(self, method: str, path: str, body: dict | None = None
                 ) -> tuple[int, bytes]:
        url = self.url.rstrip("/") + path
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        request = urllib.request.Request(url, data=data, headers=headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request,
                                        timeout=REQUEST_TIMEOUT) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LavaServerError(f"cannot reach the LAVA server at "
                                  f"{self.url} ({reason}): check the URL "
                                  "and the network, and retry") from None

    def _json(self, method: str, path: str, body: dict | None = None):
        status, data = self._request(method, path, body)
        try:
            answer = json.loads(data.decode() or "null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            answer = None
        return status, answer

    def _get(self, path: str):
        status, answer = self._json("GET", path)
        if status != 200 or answer is None:
            raise LavaServerError(f"the LAVA server at {self.url} answered "
                                  f"GET {path} with HTTP {status}"
                                  + _message(answer))
        return answer

    def submit(self, definition: str) -> int:
        """Submit a job; its id, or LavaJobRefused with the server's words."""
        status, answer = self._json("POST", f"{API}/jobs/",
                                    {"definition": definition})
        if status == 201 and isinstance(answer, dict) and answer.get("job_ids"):
            return int(answer["job_ids"][0])
        if status in (400, 401, 403, 404, 405):
            why = {401: "the token was not accepted",
                   403: "this token may not submit jobs",
                   404: "there is no LAVA REST API v0.2 at this URL",
                   405: "there is no LAVA REST API v0.2 at this URL"}
            raise LavaJobRefused(
                f"the LAVA server at {self.url} refused the job (HTTP "
                f"{status}" + (f", {why[status]}" if status in why else "")
                + ")" + _message(answer) + ": fix the job or the token, or "
                "give --lava-jobs to see the definition")
        raise LavaServerError(f"the LAVA server at {self.url} answered the "
                              f"submission with HTTP {status}"
                              + _message(answer))

    def job(self, job_id: int) -> dict:
        return self._get(f"{API}/jobs/{job_id}/")

    def wait(self, job_id: int, *, timeout: float,
             poll: float = POLL_SECONDS,
             progress: Callable[[str], None] | None = None) -> dict:
        """Poll the job until it is Finished; LavaJobTimeout after
        *timeout* seconds (the job is left to the lab)."""
        start = time.monotonic()
        last = None
        while True:
            job = self.job(job_id)
            state = job.get("state")
            if progress and state != last:
                progress(f"LAVA job {job_id}: {state} "
                         f"({time.monotonic() - start:.0f} s)")
            last = state
            if state == "Finished":
                return job
            if time.monotonic() - start + poll > timeout:
                raise LavaJobTimeout(
                    f"LAVA job {job_id} on {self.url} is still {state} "
                    f"after {timeout:.0f} s: the lab is busy or the job "
                    "hangs; see it at "
                    f"{self.url.rstrip('/')}/scheduler/job/{job_id}, or "
                    "raise --lava-wait")
            time.sleep(poll)

    def tests(self, job_id: int) -> list[dict]:
        """Every test case of the job (all pages)."""
        path = f"{API}/jobs/{job_id}/tests/"
        cases = []
        while path:
            page = self._get(path)
            cases.extend(page.get("results", []) if isinstance(page, dict)
                         else page)
            following = page.get("next") if isinstance(page, dict) else None
            path = _path_of(following) if following else ""  # no next page
        return cases

    def logs(self, job_id: int) -> str:
        status, data = self._request("GET", f"{API}/jobs/{job_id}/logs/")
        if status == 404:
            return ""
        if status != 200:
            raise LavaServerError(f"the LAVA server at {self.url} answered "
                                  f"GET {API}/jobs/{job_id}/logs/ with HTTP "
                                  f"{status}")
        return data.decode("utf-8", errors="replace")


def _message(answer) -> str:
    if isinstance(answer, dict):
        text = answer.get("message") or answer.get("detail")
        if text:
            return f": {text}"
    return ""


def _path_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def server_cases(tests: list[dict]) -> tuple[list[LavaCase], dict]:
    """The server's test cases, and its lava/job case (how the job ended)."""
    cases, job = [], {}
    for test in tests:
        try:
            meta = yaml.safe_load(test.get("metadata") or "") or {}
        except yaml.YAMLError:
            meta = {}
        if not isinstance(meta, dict):
            meta = {}
        suite = str(meta.get("definition", ""))
        extra = meta.get("extra")
        extra = extra if isinstance(extra, dict) else {}
        name = str(extra.get("test_case_id") or test.get("name", ""))
        code = test.get("result")
        result = str(RESULT_CODES.get(code, code)) if isinstance(code, int) \
            else str(code)
        if suite == LAVA_SUITE and name == "job":
            job = {"result": result, "error_type": meta.get("error_type"),
                   "error_msg": meta.get("error_msg")}
            continue
        cases.append(LavaCase(suite, name, result))
    return cases, job


def read_back(server: LavaServer, job_id: int) -> LavaOutcome:
    """The job's serial lines (from its log) and its test cases (from the
    server's results, which are what the lab recorded)."""
    logged = read_log(server.logs(job_id))
    cases, job = server_cases(server.tests(job_id))
    return LavaOutcome(logged.serial, tuple(cases) or logged.cases,
                       job.get("result", logged.job_result),
                       job.get("error_type", logged.error_type),
                       job.get("error_msg", logged.error_msg))


def _stderr(text: str) -> None:
    print(f"patchgen: {text}", file=sys.stderr, flush=True)


def submit_boot(server: LavaServer, *, url_prefix: str | None = None,
                wait: float = 3600, poll: float = POLL_SECONDS,
                progress: Callable[[str], None] | None = _stderr):
    """A boot function for verify (verify.BootFn): write the job, submit
    it, wait for the lab, read the verdict back."""

    def boot_in_lab(kernel: Path, initramfs, run_dir: Path, label: str,
                    options, config):
        settings = settings_for(options, config)
        files = write_job(run_dir / "lava", label, kernel, initramfs.path,
                          settings=settings, suite=suite_of(config),
                          boot_timeout=options.boot_timeout,
                          url_prefix=url_prefix)
        start = time.monotonic()
        job_id = server.submit(dump_yaml(files.definition))
        if progress:
            progress(f"{label}: submitted as LAVA job {job_id} "
                     f"({server.url.rstrip('/')}/scheduler/job/{job_id})")
        server.wait(job_id, timeout=wait, poll=poll, progress=progress)
        outcome = read_back(server, job_id)
        seconds = time.monotonic() - start
        serial_log = run_dir / f"{label}-serial.log"
        text = "\n".join(outcome.serial) + "\n"
        serial_log.write_text(text)
        (run_dir / f"{label}-lava-job.txt").write_text(f"{job_id}\n")
        verdict = lava_verdict(outcome, timeout=options.boot_timeout,
                               recipe=config.recipe)
        booted = BootResult(
            (f"{server.url.rstrip('/')}/scheduler/job/{job_id}",),
            serial_log, text, seconds, 0, outcome.timed_out,
            options.boot_timeout)
        return booted, verdict

    return boot_in_lab
