"""Boot a kernel and its initramfs in qemu and keep the serial log.

qemu runs under TCG (no KVM) unless the user opts into KVM: on the machines
this was written on, /dev/kvm opens but KVM guests hang in early boot, so
nothing may depend on it.  The guest has no network device and no display;
its only output is the first serial port, which is the console.  Every
boot has a timeout: a guest that hangs is stopped and the verdict says so.
"""

import fcntl
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from patchgen.infra.errors import BootFailed, KvmUnavailable
from patchgen.infra.runner import stream

QEMU = "qemu-system-x86_64"
DEFAULT_MEMORY_MB = 256
DEFAULT_TIMEOUT = 120
KVM_DEVICE = Path("/dev/kvm")
KVM_GET_API_VERSION = 0xAE00

# The kernel command line.  panic=-1: reboot at once on a panic, which with
# -no-reboot ends qemu, so a panicking kernel gives its verdict in seconds
# instead of sitting out the timeout.  printk.devkmsg=on: from 4.10 on the
# kernel rate-limits writes to /dev/kmsg (ten lines, then a pause), and
# the guest writes every line there; older kernels ignore the parameter.
KERNEL_ARGS = ("console=ttyS0", "panic=-1", "printk.devkmsg=on")


@dataclass(frozen=True)
class BootResult:
    argv: tuple
    serial_log: Path
    output: str
    seconds: float
    returncode: int
    timed_out: bool
    timeout: float

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def qemu_argv(kernel: Path, initrd: Path, *, kvm: bool = False,
              memory_mb: int = DEFAULT_MEMORY_MB,
              extra_kernel_args: tuple = (), smp: int = 1) -> list[str]:
    """The qemu command line, as a list (never a shell string)."""
    accel = ["-enable-kvm", "-cpu", "host"] if kvm else ["-accel", "tcg"]
    return [QEMU, *accel,
            "-m", str(memory_mb),
            # One CPU per socket: without ACPI the kernel finds CPUs in
            # SeaBIOS's MP table, which lists one CPU per package, and
            # qemu 6.2+ makes "-smp 2" one package of two cores.
            "-smp", f"{smp},sockets={smp},cores=1,threads=1",
            "-nodefaults", "-no-user-config",
            "-display", "none",
            "-nic", "none",
            "-serial", "stdio",
            "-monitor", "none",
            "-no-reboot",
            "-kernel", str(kernel),
            "-initrd", str(initrd),
            "-append", " ".join((*KERNEL_ARGS, *extra_kernel_args))]


def check_kvm(device: Path = KVM_DEVICE) -> None:
    """Raise KvmUnavailable unless *device* answers KVM's API ioctl."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise KvmUnavailable(
            f"--kvm needs a usable {device} ({exc.strerror}): drop --kvm to "
            "boot under TCG, or give this user access to it") from exc
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as exc:
        raise KvmUnavailable(
            f"--kvm needs a usable {device}, but it does not answer the KVM "
            f"API ({exc.strerror}): drop --kvm to boot under TCG") from exc
    finally:
        os.close(fd)
    if version != 12:
        raise KvmUnavailable(f"{device} speaks KVM API version {version}, "
                             "not 12: drop --kvm to boot under TCG")


def boot(kernel: Path, initrd: Path, serial_log: Path, *,
         kvm: bool = False, timeout: float = DEFAULT_TIMEOUT,
         memory_mb: int = DEFAULT_MEMORY_MB,
         on_line: Callable[[str], None] | None = None,
         extra_kernel_args: tuple = (), smp: int = 1) -> BootResult:
    """Boot and return what the guest printed; never longer than *timeout*.

    A guest that panics, hangs or fails its test is a result, not an error;
    BootFailed means qemu itself could not start the kernel.
    """
    if kvm:
        check_kvm()
    argv = qemu_argv(kernel, initrd, kvm=kvm, memory_mb=memory_mb,
                     extra_kernel_args=extra_kernel_args, smp=smp)
    result = stream(argv, timeout=timeout, on_line=on_line,
                    log_path=serial_log)
    if not result.timed_out and result.returncode != 0:
        # qemu's own complaints ("qemu-system-x86_64: ...") come on stderr,
        # which is merged into the log.
        complaint = [line for line in result.output.splitlines()
                     if line.startswith(QEMU) or "qemu" in line.lower()]
        first = complaint[0] if complaint else (
            result.output.strip().splitlines() or ["(no output)"])[-1]
        hint = ("; KVM fails on some machines: retry without --kvm"
                if kvm else "")
        raise BootFailed(f"qemu could not boot {kernel} (exit status "
                         f"{result.returncode}): {first}{hint}")
    return BootResult(result.argv, serial_log, result.output, result.seconds,
                      result.returncode, result.timed_out, timeout)
