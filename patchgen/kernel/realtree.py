"""The real Debian linux-source-6.1 tree, unpacked once into the cache.

Debian's package puts the tree at /usr/src/linux-source-6.1.tar.xz; this
module unpacks it into the cache folder and makes it a git repository
(once, about a minute), with a fixed author and date.  Its .gitignore
hides everything but debian/, hence `git add -A -f`.
"""

import fcntl
import shutil
from pathlib import Path

from patchgen.infra.cache import cache_dir
from patchgen.infra.errors import ToolMissing
from patchgen.infra.gitenv import FIXED_IDENTITY
from patchgen.infra.runner import run

TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
NAME = "linux-source-6.1"


def linux61_tarball() -> Path:
    if not TARBALL.exists():
        raise ToolMissing(f"{TARBALL} is missing: install the Debian package "
                          "linux-source-6.1 (apt-get install linux-source-6.1)")
    return TARBALL


def ensure_linux61() -> Path:
    """Return the path of the cached 6.1 git tree, making it if needed."""
    tarball = linux61_tarball()
    root = cache_dir("trees")
    final = root / NAME
    with open(root / f"{NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / ".git").is_dir() and (final / "Makefile").exists():
            return final
        work = root / f"{NAME}.partial"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        run(["tar", "-xJf", tarball, "-C", work, "--strip-components=1"],
            timeout=900)
        run(["git", "init", "-q", "-b", "master", work])
        run(["git", "-C", work, "config", "user.name", "Fixture Author"])
        run(["git", "-C", work, "config", "user.email", "fixture@example.org"])
        run(["git", "-C", work, "config", "gc.auto", "0"])
        run(["git", "-C", work, "add", "-A", "-f"], timeout=900)
        run(["git", "-C", work, "commit", "-q", "-m",
             f"Import Debian {NAME} ({tarball.name})"],
            env=FIXED_IDENTITY, timeout=900)
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
        return final
