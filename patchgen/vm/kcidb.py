"""A verify matrix as KCIDB data (KernelCI's reporting format, schema v5).

One checkout per tree and commit built, one build per checkout and config,
and per build one test node, the rule's (VerifyRecipe.kcidb_test, e.g.
"patchgen.NAME"), with a child per guest check ("patchgen.NAME.<check>").  Ids start with the origin
"patchgen:", as KCIDB requires.  The kcidb-io package validates this in
the tests; patchgen itself does not need it.
"""

import hashlib
import re
from pathlib import Path

ORIGIN = "patchgen"
SCHEMA_VERSION = {"major": 5, "minor": 3}
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


def _id(*parts: str) -> str:
    digest = hashlib.sha1("\0".join(parts).encode()).hexdigest()[:16]
    return f"{ORIGIN}:{digest}"


def _path_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "_"


def _status(verdict) -> str:
    if verdict.passed:
        return "PASS"
    # A guest that hung or panicked before reporting is still a FAIL of
    # the tested code: it is what the kernel did.
    return "FAIL"


# The test node of a matrix whose recipe names none.
GUEST_TEST = "patchgen.guest"


def matrix_kcidb(cells, series: str | None, test_path: str = GUEST_TEST) -> dict:
    """KCIDB data for the cells of a matrix run; *test_path* is the
    rule's test node."""
    checkouts, builds, tests = {}, [], []

    def checkout_of(cell, label: str, revision: str) -> str:
        checkout_id = _id("checkout", str(cell.tree.path), revision, label)
        if checkout_id not in checkouts:
            checkout = {"id": checkout_id, "origin": ORIGIN,
                        "tree_name": cell.tree.name, "valid": True}
            if _HEX40.match(revision):
                checkout["git_commit_hash"] = revision
            if series and label == "tip":
                checkout["comment"] = f"{series} on {cell.tree.name}"
            made = cell.generated
            if made is not None and (label == "tip" or made.tip is None):
                # The series the rule made here, or why it made none.
                checkout["misc"] = {"generated": made.to_dict()}
            checkouts[checkout_id] = checkout
        return checkout_id

    for cell in cells:
        outcomes = cell.report.outcomes if cell.report else cell.partial
        failed = cell.failed_build
        if failed is not None:
            # A kernel that did not build: its build, FAIL, and no tests.
            checkout_id = checkout_of(cell, failed.label, failed.revision or "")
            excerpt = "\n".join(failed.errors)[:16384]
            builds.append({
                "id": _id("build", checkout_id, cell.config.name),
                "checkout_id": checkout_id, "origin": ORIGIN,
                "architecture": "x86_64", "config_name": cell.config.name,
                "duration": round(failed.seconds, 1),
                "log_url": Path(failed.log).resolve().as_uri(),
                "status": "FAIL",
                **({"log_excerpt": excerpt} if excerpt else {}),
                "misc": {"label": failed.label},
            })
        for outcome in outcomes:
            revision = outcome.revision or ""
            checkout_id = checkout_of(cell, outcome.label, revision)
            build_id = _id("build", checkout_id, cell.config.name)
            builds.append({
                "id": build_id, "checkout_id": checkout_id, "origin": ORIGIN,
                "architecture": "x86_64", "config_name": cell.config.name,
                "duration": round(outcome.build.seconds, 1),
                "log_url": Path(outcome.build.log).resolve().as_uri(),
                "status": "PASS",
                "misc": {"label": outcome.label,
                         "kbuild_steps": outcome.build.steps},
            })
            verdict = outcome.verdict
            log_url = Path(outcome.boot.serial_log).resolve().as_uri()
            tests.append({
                "id": _id("test", build_id, test_path), "build_id": build_id,
                "origin": ORIGIN, "path": test_path,
                "status": _status(verdict),
                "duration": round(outcome.boot.seconds, 1),
                "log_url": log_url,
                "comment": "; ".join(verdict.reasons)[:1000] or "PASS",
                "environment": {"comment": "qemu-system-x86_64 (TCG)"},
                "misc": {"kind": verdict.kind, "boot": outcome.boot.command},
            })
            for check in verdict.checks:
                path = f"{test_path}.{_path_part(check.name)}"
                tests.append({
                    "id": _id("test", build_id, path), "build_id": build_id,
                    "origin": ORIGIN, "path": path,
                    "status": "PASS" if check.passed else "FAIL",
                    "log_url": log_url,
                    "comment": check.detail[:1000],
                })
    return {"version": dict(SCHEMA_VERSION),
            "checkouts": list(checkouts.values()), "builds": builds,
            "tests": tests}
