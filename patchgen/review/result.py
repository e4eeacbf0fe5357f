"""The values `patchgen check` produces: one result per patch and check.

A result is pass, warn, fail or skip (a check that could not run because
an earlier one failed, or that does not apply to this kind of input), with
a one-line reason and optional detail lines.  Patchwork's checks API knows
three final states (success, warning, fail); a skipped check has none and
is reported apart.
"""

from dataclasses import dataclass

PASS = "pass"
WARN = "warn"
FAIL = "fail"
SKIP = "skip"
STATES = (PASS, WARN, FAIL, SKIP)

PATCHWORK_STATE = {PASS: "success", WARN: "warning", FAIL: "fail"}
CONTEXT_PREFIX = "patchgen-"


@dataclass(frozen=True)
class CheckResult:
    check: str                       # "subject", "apply", "cover-letter", ...
    state: str                       # PASS, WARN, FAIL or SKIP
    reason: str                      # one line
    details: tuple[str, ...] = ()
    patch: int | None = None         # position in the series; None: the series

    def __post_init__(self):
        if self.state not in STATES:
            raise ValueError(f"unknown check state {self.state!r}")
        if "\n" in self.reason:
            raise ValueError("a check's reason is one line")

    @property
    def context(self) -> str:
        """Patchwork's `context`: a slug naming the check."""
        return CONTEXT_PREFIX + self.check


def worst(states) -> str:
    """The worst of *states* (fail > warn > pass); PASS when there are none."""
    states = set(states)
    for state in (FAIL, WARN):
        if state in states:
            return state
    return PASS


def one_line(text: str) -> str:
    """*text* as one line: reasons quote what a mail or a tool said (a
    parser's message that ends in a newline, a subject that encodes one)."""
    return " ".join(str(text).split())


def passed(check: str, reason: str, details=(), patch=None) -> CheckResult:
    return CheckResult(check, PASS, one_line(reason), tuple(details), patch)


def warned(check: str, reason: str, details=(), patch=None) -> CheckResult:
    return CheckResult(check, WARN, one_line(reason), tuple(details), patch)


def failed(check: str, reason: str, details=(), patch=None) -> CheckResult:
    return CheckResult(check, FAIL, one_line(reason), tuple(details), patch)


def skipped(check: str, reason: str, patch=None) -> CheckResult:
    return CheckResult(check, SKIP, one_line(reason), (), patch)
