"""Read a guest's serial log and say PASS or FAIL, with the reasons.

The guest protocol (the engine's; every rule's guest program speaks it):
each line starts with "PATCHGEN: ", then an optional "#SEQ " (a sequence
number, so that a line written twice counts once), then one of

    info start                       the test program began
    info ...                         anything else worth a log line
    check NAME PASS|FAIL detail      one check (NAME: [A-Za-z0-9_.-]+)
    result PASS|FAIL summary         the program's own result, last

written both to the console and to the kernel log (/dev/kmsg).  /init
(initramfs.py) adds "info init started", "info guest up, kernel ..." and
"info test exited with status N".

Two kinds of evidence, both from the one log:

- the guest test's own lines, which can arrive twice: one copy of each
  sequence number is kept, the kernel log's when there is one (a printk
  record reaches the serial port whole; a console write can be cut by one);
- what the kernel says on its own: BUG:, Bad page state, WARNING:, Oops,
  Call Trace, Kernel panic, RCU stalls, hung tasks, and the complaints the
  rule's recipe adds (VerifyRecipe.kernel_problems).  The recipe's counts
  (VerifyRecipe.counts) count kernel lines for the report, e.g. how often
  the kernel logged the operation the test exercises.

PASS needs a reported result of PASS, no failed check and no kernel
complaint.  A log without a result line is a FAIL (the guest crashed,
panicked or hung), never a PASS by default, and the reason says how far
the guest got: no output at all, the kernel but no line from /init,
/init but not the test, or the test's last line before it stopped.  Nothing
here is specific to one kernel version: 4.x and 6.x print the same markers.
"""

import re
import signal
from dataclasses import dataclass

from patchgen.engine.rule import VerifyRecipe
from patchgen.infra.errors import EXIT_GUEST_PANIC, EXIT_GUEST_TIMEOUT

# printk's "[    1.234567] " prefix (CONFIG_PRINTK_TIME), if any.
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")

# What the kernel says when something is wrong, by kind.  Order matters
# only for the order of reasons.  Searched anywhere in a line, because a
# console line from user space can be cut by a kernel message.
KERNEL_PROBLEMS = (
    ("panic", re.compile(r"Kernel panic - not syncing|\bKernel panic\b")),
    ("bad page state", re.compile(r"Bad page state")),
    ("BUG", re.compile(r"\bBUG: ")),
    ("oops", re.compile(r"\bOops\b|general protection fault")),
    ("WARNING", re.compile(r"\bWARNING: ")),
    ("RCU stall", re.compile(
        r"rcu\w*:? .*(detected stalls?|self-detected stall)|"
        r"INFO: rcu_\w+ (self-)?detected|rcu_\w+ kthread starved")),
    ("hung task", re.compile(r"INFO: task \S+ blocked for more than")),
    # (the recipe's own complaints come here, before the call trace)
    ("call trace", re.compile(r"\bCall Trace:")),
)

# A guest line, found anywhere in a log line (a kernel message can come
# first); "#SEQ " is absent from /init's lines and from older guests'.
_GUEST_LINE = re.compile(r"PATCHGEN: (?:#(\d+) )?(.*)")
_CHECK = re.compile(r"^check (\S+) (PASS|FAIL)\b ?(.*)")
_RESULT = re.compile(r"^result (PASS|FAIL)\b ?(.*)")
_INIT_UP = re.compile(r"^info (init started|guest up)")
_TEST_START = re.compile(r"^info start\b")
_EXIT_STATUS = re.compile(r"^info test exited with status (\d+)")
_LINUX_VERSION = re.compile(r"Linux version (\S+)")
MAX_OFFENDING = 8


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class KernelProblem:
    kind: str
    count: int
    first_lines: tuple


@dataclass(frozen=True)
class Verdict:
    """PASS/FAIL and why.  kind is "pass", "fail", "panic" or "timeout"."""

    passed: bool
    kind: str
    reasons: tuple
    offending: tuple
    checks: tuple = ()
    problems: tuple = ()
    counts: tuple = ()          # (key, label, number) of the recipe's counts
    kernel_version: str | None = None
    guest_result: str | None = None

    @property
    def label(self) -> str:
        return "PASS" if self.passed else "FAIL"

    @property
    def exit_code(self) -> int:
        if self.passed:
            return 0
        return {"panic": EXIT_GUEST_PANIC,
                "timeout": EXIT_GUEST_TIMEOUT}.get(self.kind, 1)

    def to_dict(self) -> dict:
        return {
            "verdict": self.label,
            "kind": self.kind,
            "reasons": list(self.reasons),
            "offending_lines": list(self.offending),
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail}
                       for c in self.checks],
            "kernel_problems": [{"kind": p.kind, "count": p.count,
                                 "first_lines": list(p.first_lines)}
                                for p in self.problems],
            **{key: number for key, _, number in self.counts},
            "kernel_version": self.kernel_version,
        }


def strip_timestamp(line: str) -> str:
    return _TIMESTAMP.sub("", line.rstrip("\r\n"))


_EMBEDDED = re.compile(r"(?:\[\s*\d+\.\d+\]\s?)?PATCHGEN: ")


def _pieces(raw_lines):
    """Each guest line of the log, also when two writers share one serial
    line: the console copy of one line cut off by the kernel log's copy
    of the next ("...(0 writes f[    5.86] PATCHGEN: #15 check ...")."""
    for raw in raw_lines:
        raw = raw.rstrip("\r\n")
        starts = [m.start() for m in _EMBEDDED.finditer(raw)]
        if len(starts) <= 1:
            yield raw
            continue
        yield raw[:starts[1]]
        for begin, end in zip(starts[1:], starts[2:] + [len(raw)]):
            yield raw[begin:end]


def guest_lines(raw_lines) -> list[str]:
    """The guest's own lines (without "PATCHGEN: " and the sequence
    number), one copy of each, in the order the guest wrote them.

    A numbered line that came through the kernel log (a printk timestamp
    before it) replaces a console copy of the same number; unnumbered
    lines (/init's) are kept once per text.
    """
    entries: list[list] = []        # [seq or None, text, from_kmsg]
    by_seq: dict[int, list] = {}
    texts: set[str] = set()
    for piece in _pieces(raw_lines):
        from_kmsg = bool(_TIMESTAMP.match(piece))
        match = _GUEST_LINE.search(strip_timestamp(piece))
        if not match:
            continue
        text = match.group(2).rstrip()
        if match.group(1) is None:
            if text not in texts:
                texts.add(text)
                entries.append([None, text, from_kmsg])
            continue
        seq = int(match.group(1))
        if seq not in by_seq:
            by_seq[seq] = [seq, text, from_kmsg]
            entries.append(by_seq[seq])
        elif from_kmsg and not by_seq[seq][2]:
            by_seq[seq][1:] = [text, True]
    # The two copies interleave in the log: numbered lines go back into
    # their own order, in the slots numbered lines took.
    slots = [i for i, e in enumerate(entries) if e[0] is not None]
    for slot, entry in zip(slots, sorted((entries[i] for i in slots),
                                         key=lambda e: e[0])):
        entries[slot] = entry
    return [e[1] for e in entries]


def count_lines(lines, patterns) -> int:
    """How many of *lines* match one of *patterns* (regular expressions)."""
    compiled = [re.compile(p) for p in patterns]
    return sum(1 for line in lines if any(p.search(line) for p in compiled))


def kernel_problem_patterns(recipe: VerifyRecipe | None = None) -> tuple:
    """The engine's complaints with the *recipe*'s before the call trace."""
    extra = tuple((kind, re.compile(pattern)) for kind, pattern in
                  (recipe.kernel_problems if recipe is not None else ()))
    return KERNEL_PROBLEMS[:-1] + extra + KERNEL_PROBLEMS[-1:]


# Lines right after a complaint that say what it was about.
_CONTEXT = re.compile(r"page dumped because:|^flags: |^RIP: |^\s*\w+\+0x")


def find_kernel_problems(lines, recipe: VerifyRecipe | None = None
                         ) -> list[KernelProblem]:
    """Every kind of kernel complaint (the engine's and the *recipe*'s),
    counted, with its first lines (and the lines after the first one that
    say what it was about)."""
    problems = kernel_problem_patterns(recipe)
    found: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for i, line in enumerate(lines):
        # The guest's own lines never quote these markers, so a line that
        # mixes both (a console line cut by a kernel message) still counts.
        for kind, pattern in problems:
            if pattern.search(line):
                counts[kind] = counts.get(kind, 0) + 1
                if kind not in found:
                    context = [c for c in lines[i + 1:i + 8]
                               if _CONTEXT.search(c)][:2]
                    found[kind] = [line, *context]
                break
    return [KernelProblem(kind, counts[kind], tuple(found[kind]))
            for kind, _ in problems if kind in found]


def parse_serial_log(text: str, *, timed_out: bool = False,
                     timeout: float | None = None,
                     recipe: VerifyRecipe | None = None) -> Verdict:
    """The verdict for one boot's serial log; the *recipe* (the rule's
    VerifyRecipe) adds its kernel complaints and its counts."""
    raw = text.splitlines()
    lines = [strip_timestamp(line) for line in raw]
    lines = [line for line in lines if line.strip()]
    guest = guest_lines(raw)
    checks, result, init_up, started, status = [], None, False, False, None
    for line in guest:
        if _INIT_UP.search(line):
            init_up = True
        if _TEST_START.search(line):
            started = True
        match = _EXIT_STATUS.search(line)
        if match:
            status = int(match.group(1))
        match = _CHECK.search(line)
        if match:
            started = True
            checks.append(Check(match.group(1), match.group(2) == "PASS",
                                match.group(3).strip()))
            continue
        match = _RESULT.search(line)
        if match:
            started = True
            result = match.group(1)
    init_up = init_up or started
    problems = find_kernel_problems(lines, recipe)
    version = next((m.group(1) for m in map(_LINUX_VERSION.search, lines) if m),
                   None)

    reasons, offending = [], []
    kind = "fail"
    panic = next((p for p in problems if p.kind == "panic"), None)
    if timed_out:
        kind = "timeout"
        # qemu's own "terminating on signal" line is not the guest's.
        own = [line for line in lines if not line.startswith("qemu-system")]
        last = own[-1] if own else "(no output at all)"
        limit = f" within {timeout:.0f} s" if timeout else ""
        reasons.append(f"the guest did not finish{limit} and was stopped; "
                       f"its last line: {last}")
        offending.append(last)
    elif panic:
        kind = "panic"
    for problem in problems:
        # A call trace follows another complaint; alone, it counts.
        if problem.kind == "call trace" and len(problems) > 1:
            continue
        times = "once" if problem.count == 1 else f"{problem.count} times"
        reasons.append(f"the kernel reported {problem.kind} {times} "
                       f"(first: {problem.first_lines[0].strip()})")
        offending.extend(problem.first_lines)
    for check in checks:
        if not check.passed:
            reasons.append(f"check {check.name} failed: {check.detail}")
            offending.append(f"PATCHGEN: check {check.name} FAIL {check.detail}")
    if result is None:
        reasons.append(_how_far(lines, guest, init_up, started, status))
    if result == "FAIL" and not any(not c.passed for c in checks):
        reasons.append("the guest test reported FAIL")

    passed = not reasons and result == "PASS"
    if passed:
        kind = "pass"
    return Verdict(passed=passed, kind=kind, reasons=tuple(reasons),
                   offending=tuple(_unique(offending))[:MAX_OFFENDING],
                   checks=tuple(checks), problems=tuple(problems),
                   counts=tuple((c.key, c.label, count_lines(lines, c.patterns))
                                for c in (recipe.counts if recipe is not None else ())),
                   kernel_version=version, guest_result=result)


def _how_far(lines, guest, init_up, started, status) -> str:
    """Why there is no result: how far the guest got, in one sentence."""
    own = [line for line in lines if not line.startswith("qemu-system")]
    if not own:
        return ("the guest produced no output at all (not even the "
                "kernel's first line on the serial console)")
    if not init_up:
        return ("the kernel booted but its /init never wrote a line (no "
                "\"PATCHGEN: info\" line on the console or in the kernel "
                "log)")
    exited = ("" if status is None else
              f"; /init saw it exit with status {status}"
              + (f", killed by {_signal_name(status - 128)}"
                 if status > 128 else ""))
    if not started:
        return ("/init ran but the test program never started (no line "
                f"from it){exited}")
    last = next((line for line in reversed(guest)
                 if not line.startswith("info test exited")), "")
    return ("the test started but stopped midway, before its result; "
            f"its last line: {last}{exited}")


def _signal_name(number: int) -> str:
    try:
        return f"{signal.Signals(number).name} (signal {number})"
    except ValueError:
        return f"signal {number}"


def _unique(items):
    seen = set()
    for item in items:
        if item not in seen:
            seen.add(item)
            yield item
