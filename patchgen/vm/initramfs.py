"""The guest's initramfs: busybox, the rule's static test program and an /init.

The program is the rule's (Rule.verify.program, a C source file): compiled
with `gcc -static`, put at /<its stem>, run by /init as `/<stem> --stress N
ARGS...` (ARGS: the config's "# patchgen-guest:" words).  What it prints
is read by verdict.py (the guest protocol is described there).

The archive is made at verify time and cached by the hash of its content
(busybox, the compiled program, the /init text), so an unchanged test boots
the same file again.  CpioWriter writes the "newc" format the kernel
unpacks (Documentation/driver-api/early-userspace/buffer-format.rst) to any
binary file object, which keeps it testable without a disk.
"""

import errno
import hashlib
import io
import os
import shlex
import shutil
import stat
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from patchgen.infra.cache import cache_dir
from patchgen.infra.errors import CacheFull, GuestProgramFailed, ToolMissing
from patchgen.infra.runner import run

DEFAULT_STRESS = 64

_NEWC_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"


class CpioWriter:
    """Write a cpio archive in the "newc" format to a binary file object.

    Every entry has uid/gid 0 and mtime 0 so that the same content always
    gives the same bytes.  Parent folders must be added before their
    entries (the kernel does not make them).
    """

    def __init__(self, fileobj: BinaryIO):
        self._out = fileobj
        self._ino = 0
        self._names: set[str] = set()
        self._closed = False

    def _entry(self, name: str, mode: int, data: bytes = b"", *,
               nlink: int = 1, rdev: tuple[int, int] = (0, 0)) -> None:
        if self._closed:
            raise ValueError("the archive is already closed")
        name = name.strip("/")
        if not name or name in self._names or ".." in name.split("/"):
            raise ValueError(f"bad or duplicate cpio entry name {name!r}")
        self._names.add(name)
        self._write_header(name, mode, data, nlink, rdev)

    def _write_header(self, name: str, mode: int, data: bytes, nlink: int,
                      rdev: tuple[int, int]) -> None:
        self._ino += 1
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(encoded), 0)
        header = _NEWC_MAGIC + b"".join(b"%08X" % f for f in fields)
        self._out.write(header + encoded + _pad(len(header) + len(encoded)))
        self._out.write(data + _pad(len(data)))

    def add_dir(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def add_file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def add_symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def add_char_device(self, name: str, major: int, minor: int,
                        mode: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def close(self) -> None:
        """Write the trailer entry; the archive is complete after this."""
        if not self._closed:
            self._write_header(_TRAILER, 0, b"", 1, (0, 0))
            self._closed = True


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def read_cpio(data: bytes) -> list[dict]:
    """Parse a newc archive back into entries (for tests and inspection)."""
    entries: list = []
    pos = 0
    while True:
        if data[pos:pos + 6] != _NEWC_MAGIC:
            raise ValueError(f"no newc header at offset {pos}")
        fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16)
                  for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name_start = pos + 110
        name = data[name_start:name_start + namesize - 1].decode()
        data_start = name_start + namesize + _pad_len(110 + namesize)
        body = data[data_start:data_start + filesize]
        pos = data_start + filesize + _pad_len(filesize)
        if name == _TRAILER:
            return entries
        entries.append({"name": name, "mode": fields[1], "nlink": fields[4],
                        "rdev": (fields[9], fields[10]), "data": body})


def _pad_len(length: int) -> int:
    return -length % 4


# --- the parts ------------------------------------------------------------

def is_static_elf(path: Path) -> bool:
    """True when *path* is an ELF executable with no program interpreter
    (no PT_INTERP header), i.e. it runs without a dynamic loader."""
    with open(path, "rb") as f:
        ident = f.read(64)
        if len(ident) < 64 or ident[:4] != b"\x7fELF":
            return False
        little = ident[5] == 1
        end = "<" if little else ">"
        if ident[4] == 2:   # 64-bit
            phoff, = struct.unpack(end + "Q", ident[32:40])
            phentsize, phnum = struct.unpack(end + "HH", ident[54:58])
        else:
            phoff, = struct.unpack(end + "I", ident[28:32])
            phentsize, phnum = struct.unpack(end + "HH", ident[42:46])
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, = struct.unpack(end + "I", f.read(4))
            if p_type == 3:     # PT_INTERP
                return False
    return True


def find_busybox() -> Path:
    """The static busybox the guest runs (Debian package busybox-static)."""
    found = shutil.which("busybox")
    if not found:
        raise ToolMissing("busybox is not installed: install the Debian "
                          "package busybox-static and retry")
    path = Path(found).resolve()
    if not is_static_elf(path):
        raise ToolMissing(f"{found} is linked dynamically and cannot run in "
                          "the guest: install the Debian package "
                          "busybox-static and retry")
    return path


def program_name(source: Path) -> str:
    """The guest program's name in the initramfs: its source's stem."""
    return Path(source).stem


def compile_test_program(source: Path) -> Path:
    """Compile the guest test with `gcc -static`, cached by source hash."""
    source = Path(source)
    try:
        text = source.read_bytes()
    except OSError as exc:
        raise GuestProgramFailed(f"cannot read the guest program {source}: "
                                 f"{exc.strerror or exc}") from None
    cc = run(["gcc", "--version"]).stdout.splitlines()[0]
    key = _sha256(text + cc.encode())[:16]
    out = cache_dir("guest") / f"{program_name(source)}-{key}"
    if out.exists():
        return out
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    result = run(["gcc", "-static", "-O2", "-Wall", "-o", tmp, source],
                 timeout=300, check=False)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = [line for line in result.stderr.splitlines() if line.strip()][:3]
        if any("cannot find -lc" in line for line in first):
            raise GuestProgramFailed(
                "gcc -static cannot find the static C library: install the "
                "Debian package libc6-dev and retry")
        _raise_if_disk_full(result.stderr, out.parent)
        raise GuestProgramFailed(f"gcc -static could not compile {source}: "
                                 + " / ".join(first))
    tmp.rename(out)
    return out


def init_script(program: str, stress: int = DEFAULT_STRESS,
                extra_args: tuple = ()) -> str:
    """The guest's /init: mount what the test reads, run it, reboot.

    Each line goes to the console and to the kernel log (/dev/kmsg, a node
    of the archive itself, so it works before devtmpfs is mounted): on a
    real 4.9 kernel only the kernel log reached the serial port.  The
    first line comes before any mount, so a guest whose mounts fail still
    shows that /init ran.  `reboot -f` (not poweroff) because without ACPI
    poweroff only halts; with qemu's -no-reboot a reboot ends qemu.
    """
    args = shlex.join(["--stress", str(stress), *map(str, extra_args)])
    return f"""#!/bin/sh
# /init of the patchgen verify initramfs (made by patchgen).
bb=/bin/busybox
say() {{
	echo "PATCHGEN: $*" >/dev/kmsg
	echo "PATCHGEN: $*"
}}
say "info init started"
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
$bb mount -t debugfs debugfs /sys/kernel/debug
say "info guest up, kernel $($bb uname -r)"
/{program} {args}
say "info test exited with status $?"
$bb sync
$bb reboot -f
"""


@dataclass(frozen=True)
class Initramfs:
    path: Path
    sha256: str
    init: str


def write_initramfs(out: BinaryIO, *, busybox: bytes, program: bytes,
                    init: str, name: str) -> None:
    """Write the whole archive to *out*."""
    cpio = CpioWriter(out)
    for folder in ("bin", "dev", "proc", "sys", "tmp"):
        cpio.add_dir(folder)
    cpio.add_char_device("dev/console", 5, 1)
    cpio.add_char_device("dev/kmsg", 1, 11, 0o644)
    cpio.add_file("bin/busybox", busybox, 0o755)
    cpio.add_symlink("bin/sh", "busybox")
    cpio.add_file(name, program, 0o755)
    cpio.add_file("init", init.encode(), 0o755)
    cpio.close()


def make_initramfs(source: Path, stress: int = DEFAULT_STRESS, *,
                   init: str | None = None,
                   extra_args: tuple = ()) -> Initramfs:
    """Make (or reuse) the initramfs for a verify run of the guest program
    *source* (the rule's recipe.program).

    *init* replaces the /init script (tests use it for a guest that hangs).
    """
    busybox = find_busybox().read_bytes()
    program = compile_test_program(source).read_bytes()
    name = program_name(source)
    init = init if init is not None else init_script(name, stress, extra_args)
    buf = io.BytesIO()
    write_initramfs(buf, busybox=busybox, program=program, init=init, name=name)
    data = buf.getvalue()
    digest = _sha256(data)
    folder = cache_dir("initramfs")
    path = folder / f"verify-{digest[:16]}.cpio"
    if not path.exists():
        write_cache_file(path, data)
    return Initramfs(path, digest, init)


def write_cache_file(path: Path, data: bytes) -> None:
    """Write *data* to *path* atomically; a full disk is a CacheFull."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    except OSError as exc:
        _raise_cache_full(exc, path.parent)
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            write_all(f, data, path.parent)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_all(f: BinaryIO, data: bytes, where: Path) -> None:
    """f.write(data) and flush; a full disk becomes CacheFull."""
    try:
        f.write(data)
        f.flush()
    except OSError as exc:
        _raise_cache_full(exc, where)
        raise


def _raise_cache_full(exc: OSError, where: Path) -> None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise CacheFull(f"the disk under {where} is full: free some space "
                        "(or set PATCHGEN_CACHE to a folder on another "
                        "disk) and retry") from exc


def _raise_if_disk_full(output: str, where: Path) -> None:
    if "No space left on device" in output:
        raise CacheFull(f"the disk under {where} is full: free some space "
                        "(or set PATCHGEN_CACHE to a folder on another "
                        "disk) and retry")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
