"""Typed errors: library code raises them, only the CLI prints and exits.

Every error carries one sentence that says what is wrong and what to do,
and a distinct exit code.  Errors are split by blame: UserError (the input
is wrong: fix the tree, the options) and EnvironmentProblem (this machine
lacks a tool or space).  Exit codes are allocated here, in one table, so
that no two mean the same thing:

    0   success (also "not affected" and "already applied")
    1   a check failed (patchgen check, patchgen verify)
    2   usage error (argparse)
    3-19  core: tree, parse, rule, apply
    20-29 format (series.py, versions.py, format.py)
    30-39 check
    40-49 verify (build, boot)
    50-59 the machine and patchgen's own files (read-only, full, damaged)
    60-69 LAVA jobs and the verify matrix
    80-89 format, continued (checkpatch errors, sent versions)
    90-99 rules: loading the installed rules, choosing one, rule-test
    70  internal error (a bug in patchgen: please report it)
"""

from typing import Any


class PatchgenError(Exception):
    """Base of every error patchgen reports to its user."""

    exit_code = 70
    blame = "patchgen"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UserError(PatchgenError):
    """The input is wrong; the message says how to fix it."""

    blame = "user"
    exit_code = 3


class UsageError(UserError):
    """Options that contradict each other (argparse's own errors are 2 too)."""

    exit_code = 2


class EnvironmentProblem(PatchgenError):
    """This machine lacks something (a tool, disk space, a device)."""

    blame = "environment"
    exit_code = 10


# --- core: 3-19 -----------------------------------------------------------

class NotAGitTree(UserError):
    exit_code = 3


class DirtyTree(UserError):
    exit_code = 4


class MissingFile(UserError):
    """A file the rule needs is missing or unreadable (also: no mm/)."""

    exit_code = 5


class UnparseableSite(UserError):
    exit_code = 6


class BranchExists(UserError):
    exit_code = 7


class IdentityUnset(UserError):
    exit_code = 8


class RuleRefused(UserError):
    """The rule cannot be applied to this tree as it is (says why)."""

    exit_code = 9


class ToolMissing(EnvironmentProblem):
    exit_code = 10


class CommandFailed(EnvironmentProblem):
    """An external command failed where it should not have."""

    exit_code = 11


class CommandTimeout(EnvironmentProblem):
    exit_code = 12


class ApplyFailed(PatchgenError):
    """A step of apply failed half-way; nothing was left behind."""

    exit_code = 13


class BadRule(PatchgenError):
    """A rule or its templates are inconsistent (found when loaded)."""

    exit_code = 14


class UnknownRevision(UserError):
    exit_code = 15


# --- format: 20-29 --------------------------------------------------------

class EmptyRange(UserError):
    """The selected range holds no commits."""

    exit_code = 20


class BaseNotAncestor(UserError):
    exit_code = 21


class FormatIdentityUnset(IdentityUnset):
    """format needs who sends (the cover letter's From:), like apply does."""

    exit_code = 22


class OutputExists(UserError):
    """Something patchgen did not write is where the series would go."""

    exit_code = 23


class CoverTemplateError(UserError):
    """A cover letter template uses a value format does not give, or is broken."""

    exit_code = 24


class UnpostableCommit(UserError):
    """A merge or an empty commit: neither can be mailed as a patch."""

    exit_code = 25


class NoBase(UserError):
    """Where a branch starts cannot be told: give --base or --range."""

    exit_code = 26


class PreviousVersionMissing(UserError):
    """-v N (N > 1) needs an earlier version to compare with."""

    exit_code = 27


class BadArgument(UserError):
    """An option's value is malformed (--range, --topic, -o)."""

    exit_code = 28


class RoundTripFailed(PatchgenError):
    """The written patches do not rebuild the branch: a bug, never mailed."""

    exit_code = 29


# --- check: 30-39 (1 means "a check failed": not an error) ------------------

class SeriesNotFound(UserError):
    """SERIES is neither a file, a folder nor a revision range of --tree."""

    exit_code = 30


class NotASeries(UserError):
    """SERIES holds no patch at all (an empty folder, a file that is not a
    patch or a mailbox, an empty range).  *problem* is what is wrong with
    it, *advice* what check wants instead: verify, which reads series the
    same way, gives its own advice (it takes a branch, not a range)."""

    exit_code = 31

    def __init__(self, problem: str, advice: str = ""):
        super().__init__(f"{problem}: {advice}" if advice else problem)
        self.problem = problem


class BadBuildConfig(UserError):
    """--config names a missing or unreadable config fragment."""

    exit_code = 32


class CheckBuildSetupFailed(EnvironmentProblem):
    """The build folder for --build could not be configured."""

    exit_code = 33


class CheckpatchUnusable(UserError):
    """--checkpatch names a file that is missing or is not a perl script."""

    exit_code = 34


class PatchworkFailed(EnvironmentProblem):
    """check --post: patchwork cannot be reached or refused a request."""

    exit_code = 35


class PatchworkPatchMissing(UserError):
    """check --post: a patch of the series is not on that patchwork."""

    exit_code = 36


class TokenUnset(UserError):
    """check --post: the variable --token-env names is unset or empty."""

    exit_code = 37


# --- verify: 40-49 ----------------------------------------------------------
#
# A finished boot is a verdict, not an error: PASS exits 0, FAIL exits 1,
# except that a guest that panicked or hung gets its own status so that CI
# can tell them apart (EXIT_GUEST_PANIC, EXIT_GUEST_TIMEOUT below).

class NotAKernelTree(UserError):
    """--tree is not a kernel source tree (or cannot be built out of tree)."""

    exit_code = 40


class BuildFailed(UserError):
    """The kernel did not build; the message carries the first errors,
    *errors* the same lines one by one.  verify adds *failed* (a
    FailedBuild) and *outcomes* (the kernels of the series that were
    judged before this one), and *generated* when a rule made the series."""

    exit_code = 41
    failed: Any = None
    outcomes: tuple = ()
    generated: Any = None          # what the rule made (generated.py)

    def __init__(self, message: str, errors: tuple = ()) -> None:
        super().__init__(message)
        self.errors = tuple(errors)


class ConfigSymbolMissing(UserError):
    """A symbol the test needs is not =y after make olddefconfig."""

    exit_code = 42


class KvmUnavailable(EnvironmentProblem):
    exit_code = 43


class CacheFull(EnvironmentProblem):
    """The disk under the cache folder is full."""

    exit_code = 44


EXIT_GUEST_PANIC = 45
EXIT_GUEST_TIMEOUT = 46


class SeriesProblem(UserError):
    """--series names no usable series (empty, no base, does not apply)."""

    exit_code = 47


class BootFailed(EnvironmentProblem):
    """qemu itself failed (not the guest): it could not start the kernel."""

    exit_code = 48


class GuestProgramFailed(EnvironmentProblem):
    """The static test program or the initramfs could not be made."""

    exit_code = 49


class NoVerifyRecipe(UserError):
    """verify cannot tell which rule's recipe to use: --rule names a rule
    without one, or no rule or several installed rules have one.  (40-49
    are all taken; this is a rule-choice problem, so it comes from the top
    of the rules band 90-99.)"""

    exit_code = 98


# --- the machine and patchgen's files: 50-59 -------------------------------
#
# What the environment did, not the input and not a bug: each its own code.

class ReadOnly(EnvironmentProblem):
    """The repository (or the output folder) cannot be written to."""

    exit_code = 50


class OutputUnwritable(EnvironmentProblem):
    """stdout or stderr cannot be written (a full device such as /dev/full)."""

    exit_code = 51

    @staticmethod
    def describe(error: OSError) -> str:
        return (f"the output could not be written ({error.strerror or error}): "
                "send it to a file or a device with space")


class BadSeriesState(UserError):
    """series.json is damaged or names files outside its series folder."""

    exit_code = 52


class FolderExists(UserError):
    """demo --dir names a folder that already exists."""

    exit_code = 53


class DiskFull(EnvironmentProblem):
    """No space left outside the cache (TMPDIR, the repository, -o)."""

    exit_code = 54


# --- LAVA jobs and the verify matrix: 60-69 ----------------------------------

class LavaDispatcherMissing(ToolMissing):
    """--lava-run needs lava-run (Debian package lava-dispatcher)."""

    exit_code = 60


class LavaRunFailed(EnvironmentProblem):
    """lava-run itself failed: no job result, or it refused its input."""

    exit_code = 61


class LavaJobRefused(UserError):
    """A LAVA server refused the job (bad definition, no such device type,
    no permission)."""

    exit_code = 62


class LavaJobTimeout(EnvironmentProblem):
    """A submitted job did not finish in the lab within the wait."""

    exit_code = 63


class LavaServerError(EnvironmentProblem):
    """A LAVA server could not be reached or gave an unusable answer."""

    exit_code = 64


class LavaTokenMissing(UserError):
    """--token-env names an environment variable that is not set."""

    exit_code = 65


class BadMatrix(UserError):
    """The matrix file is missing, not TOML, or names what does not exist."""

    exit_code = 66


# --- format, continued: 80-89 -------------------------------------------------

class CheckpatchErrors(UserError):
    """checkpatch.pl found an ERROR in a patch format wrote (the files are
    written, the send line is not printed) and --allow-checkpatch-errors
    was not given."""

    exit_code = 80


class VersionSent(UserError):
    """-v N names a version already marked sent: it is never rewritten."""

    exit_code = 81


# --- rules: 90-99 -------------------------------------------------------------
#
# Loading the installed rules (patchgen/engine/registry.py), choosing one,
# and patchgen rule-test.

class RuleLoadFailed(PatchgenError):
    """A rule package (built in, or installed through the entry-point group
    patchgen.rules) cannot be imported or gives no Rule."""

    exit_code = 90


class RuleInvalid(PatchgenError):
    """A rule was loaded but fails its check (id, site words, templates)."""

    exit_code = 91


class RuleConflict(PatchgenError):
    """Two installed packages give a rule of the same id."""

    exit_code = 92


class UnknownRule(UserError):
    """--rule (or rule-test RULE) names no installed rule."""

    exit_code = 93


class RuleRequired(UserError):
    """More than one rule is installed and the command needs one: --rule."""

    exit_code = 94


class SnippetsFailed(UserError):
    """patchgen rule-test: a snippet of the rule does not give what it
    expects (the output says which)."""

    exit_code = 95


class BadSnippet(UserError):
    """A rule's snippets folder is malformed (no expect line, an
    expected-output file without its input, a rule with no snippets)."""

    exit_code = 96
