"""verify's three LAVA modes, as options of `patchgen verify`:

    --lava-jobs DIR [--lava-url PREFIX]   write the job definitions, boot nothing
    --lava-run                            boot through lava-run on this machine
    --lava-submit URL --token-env VAR     boot in a LAVA lab, wait, read back

Each mode is a boot function for verify.verify (verify.BootFn); the build
and the series handling stay verify's.
"""

import json
import os
import sys
from pathlib import Path

from patchgen.infra.errors import BadArgument, LavaTokenMissing

DEFAULT_WAIT = 3600


def add_arguments(parser) -> None:
    group = parser.add_argument_group("LAVA")
    modes = group.add_mutually_exclusive_group()
    modes.add_argument("--lava-jobs", metavar="DIR", type=Path,
                       help="write a LAVA job definition (device_type qemu) "
                            "for each kernel to DIR, with the kernel, the "
                            "initramfs and a device dictionary for "
                            "lava-run; build, but boot nothing")
    modes.add_argument("--lava-run", action="store_true",
                       help="boot each kernel through LAVA's lava-run on "
                            "this machine (Debian package lava-dispatcher)")
    modes.add_argument("--lava-submit", metavar="URL",
                       help="submit each boot to the LAVA server at URL "
                            "(REST API v0.2), wait for it and read its "
                            "results back")
    group.add_argument("--lava-url", metavar="PREFIX",
                       help="with --lava-jobs or --lava-submit: the URL "
                            "under which the lab fetches the files of the "
                            "jobs' folder (default: file:// paths)")
    group.add_argument("--token-env", metavar="VAR",
                       help="with --lava-submit: the environment variable "
                            "that holds the LAVA API token")
    group.add_argument("--lava-wait", type=float, default=DEFAULT_WAIT,
                       metavar="SECONDS",
                       help=f"with --lava-submit: how long to wait for each "
                            f"job in the lab (default {DEFAULT_WAIT})")


def boot_function(args, written: list):
    """The boot function the options ask for (None: boot directly), after
    checking what it needs before anything is built."""
    if args.lava_url and not (args.lava_jobs or args.lava_submit):
        raise BadArgument("--lava-url goes with --lava-jobs or "
                          "--lava-submit: add one of them, or drop it")
    if args.token_env and not args.lava_submit:
        raise BadArgument("--token-env goes with --lava-submit: add it, or "
                          "drop --token-env")
    if args.lava_jobs:
        from patchgen.vm.lava import job_writer
        return job_writer(args.lava_jobs, url_prefix=args.lava_url,
                          written=written)
    if args.lava_run:
        from patchgen.vm.lava_run import find_lava_run, lava_run_boot
        find_lava_run()
        return lava_run_boot
    if args.lava_submit:
        from patchgen.vm.lava_submit import LavaServer, submit_boot
        token = None
        if args.token_env:
            token = os.environ.get(args.token_env)
            if not token:
                raise LavaTokenMissing(
                    f"--token-env {args.token_env}: the environment "
                    f"variable {args.token_env} is not set or empty: "
                    "export it with your LAVA API token and retry")
        server = LavaServer(args.lava_submit, token)
        return submit_boot(server, url_prefix=args.lava_url,
                           wait=args.lava_wait)
    return None


def print_written(args, written: list) -> int:
    """What --lava-jobs wrote, and how to run it here."""
    print("patchgen: nothing was booted", file=sys.stderr)
    if args.json:
        print(json.dumps({"jobs": [
            {"label": f.label, "job": str(f.job), "device": str(f.device),
             "kernel": str(f.kernel), "initrd": str(f.initrd)}
            for f in written]}, indent=2))
        return 0
    for files in written:
        print(f"{files.label}: {files.job}")
    if written:
        device = written[0].device
        print(f"images and device dictionary in {device.parent}; run one "
              f"here with:\n  lava-run --job-id 1 --output-dir "
              f"{device.parent / 'out'} --device {device} "
              f"{written[0].job}")
    return 0
