"""patchgen cache: what the cache folder holds; prune what was not used."""

import sys
import time

from patchgen.infra.cache_usage import prune, usage

NAME = "cache"
HELP = ("show the cache folder's size per folder, workspace and build; "
        "--prune removes builds and checkouts not used for --days days "
        "(never one a running build holds)")


def _days(text: str) -> float:
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if value < 0:
        raise argparse.ArgumentTypeError("days cannot be negative")
    return value


def add_arguments(parser):
    parser.add_argument("--prune", action="store_true",
                        help="remove builds, checkouts and verify run logs "
                        "not used for --days days")
    parser.add_argument("--days", type=_days, default=30.0, metavar="N",
                        help="with --prune: unused for this many days "
                        "(default: %(default)g)")
    parser.add_argument("--dry-run", action="store_true",
                        help="with --prune: say what would go, remove nothing")


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _progress(message: str) -> None:
    print(f"patchgen: {message}", file=sys.stderr)


def run(args) -> int:
    now = time.time()
    if args.prune:
        result = prune(args.days, dry_run=args.dry_run, now=now, notify=_progress)
        verb = "would free" if result.dry_run else "freed"
        for entry in result.removed:
            print(f"{'would remove' if result.dry_run else 'removed'} {entry.kind} "
                  f"{entry.path} ({human(entry.size)}, unused for "
                  f"{entry.age_days(now):.0f} days)")
        for entry in result.kept_in_use:
            print(f"kept {entry.kind} {entry.path}: in use (its lock is held)")
        print(f"{verb} {human(result.freed)}: {len(result.removed)} folders not "
              f"used for {args.days:g} days"
              + (f"; {len(result.kept_in_use)} in use kept" if result.kept_in_use else ""))
        return 0
    found = usage(notify=_progress)
    print(f"cache: {found.root} ({human(found.total)})")
    for entry in found.folders:
        print(f"  {human(entry.size):>10}  {entry.path.name}/")
    if found.workspaces:
        print("workspaces (checkouts and builds; last used):")
        for entry in found.workspaces:
            print(f"  {human(entry.size):>10}  {entry.path.parent.name}/"
                  f"{entry.path.name}  {entry.kind}, {entry.age_days(now):.0f} days ago")
    print("prune with: patchgen cache --prune [--days N] [--dry-run]")
    return 0
