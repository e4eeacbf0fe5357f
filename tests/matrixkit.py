"""Matrix cells made from serial logs recorded on real boots
(tests/data/verify), for the tests of the table and the KCIDB data."""

from pathlib import Path

from patchgen.vm.boot import BootResult
from patchgen.vm.kbuild import BuildResult
from patchgen.vm.verdict import parse_serial_log
from patchgen.vm.verify import Outcome

DATA = Path(__file__).resolve().parent / "data" / "verify"


def outcome(label, log_name, tmp_path, revision="a" * 40):
    """The kernel *label* at *revision*, judged from the recorded log."""
    text = (DATA / log_name).read_text()
    serial = tmp_path / f"{label}-{log_name}"
    serial.write_text(text)
    build = BuildResult(Path("/src"), Path("/build"), Path("/b/bzImage"),
                        tmp_path / "build.log", 12.5, 3)
    (tmp_path / "build.log").write_text("")
    boot = BootResult(("qemu-system-x86_64",), serial, text, 2.1, 0, False,
                      60)
    return Outcome(label, revision, build, boot, parse_serial_log(text))
