"""Reading a repository's objects: one `git cat-file --batch` per repository.

Rules read dozens of files per commit, and check reviews every commit of a
series: one process per read made a 300-patch check spend most of its
time starting git.  One long-lived `git cat-file --batch` answers them
all, with a timeout on every read.  It replaces GitPython's cat-file
streams, whose finalizer could block for ever on a blob that an interrupt
left half-read: here any failure, an interrupt included, kills the process
(the next read starts a new one), so no read is ever left half-done.
"""

import atexit
import os
import select
import signal
import subprocess
import time
from collections import OrderedDict
from functools import lru_cache

from patchgen.infra.errors import CommandFailed, CommandTimeout
from patchgen.infra.runner import _not_started, fault_point, run

READ_TIMEOUT = 300.0
BLOB_CACHE_BYTES = 64 * 1024 * 1024


class ObjectReader:
    """`git cat-file --batch` on the repository at *top*."""

    def __init__(self, top: str):
        self.top = top
        self.proc: subprocess.Popen | None = None
        self.buffer = b""

    def _start(self) -> subprocess.Popen:
        argv = ("git", "-C", self.top, "cat-file", "--batch")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        except FileNotFoundError as exc:
            raise _not_started(argv, None) from exc
        self.buffer = b""
        return self.proc

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def _fill(self, deadline: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise CommandTimeout(f"git cat-file in {self.top} gave no answer "
                                 f"within {READ_TIMEOUT:.0f} s")
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            raise CommandFailed(f"git cat-file in {self.top} stopped answering")
        self.buffer += chunk

    def _line(self, deadline: float) -> bytes:
        while b"\n" not in self.buffer:
            self._fill(deadline)
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def _exactly(self, size: int, deadline: float) -> bytes:
        while len(self.buffer) < size:
            self._fill(deadline)
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def get(self, name: str) -> tuple[str, str, bytes] | None:
        """(id, type, content) of the object *name* names ("<commit>:<path>",
        an id), or None when there is none."""
        if "\n" in name:
            return None
        proc = self.proc if self.proc is not None and self.proc.poll() is None \
            else self._start()
        deadline = time.monotonic() + READ_TIMEOUT
        try:
            assert proc.stdin is not None
            proc.stdin.write(name.encode("utf-8", "surrogateescape") + b"\n")
            proc.stdin.flush()
            fault_point(("git", "cat-file"), name)
            header = self._line(deadline).decode("utf-8", "replace").split()
            if len(header) != 3:       # "<name> missing", "ambiguous"
                return None
            sha, kind, size = header
            data = self._exactly(int(size) + 1, deadline)[:-1]
            return sha, kind, data
        except BaseException:
            # Whatever stopped us (an interrupt too), the process is
            # dropped: a half-read answer is never read on.
            self.close()
            raise


_readers: dict[str, ObjectReader] = {}


def reader(top: str) -> ObjectReader:
    top = str(top)
    if top not in _readers:
        _readers[top] = ObjectReader(top)
    return _readers[top]


def close_under(folder) -> None:
    """Stop the readers of repositories inside *folder*, which is about to
    be removed (a scratch clone of check or format): a long-lived
    `git cat-file --batch` must not outlive the repository it reads."""
    prefix = os.path.join(os.path.abspath(str(folder)), "")
    for top in [t for t in _readers
                if os.path.join(os.path.abspath(t), "").startswith(prefix)]:
        _readers.pop(top).close()


@atexit.register
def close_all() -> None:
    for one in list(_readers.values()):
        one.close()
    _readers.clear()


def _parse_tree(data: bytes) -> dict[str, tuple[str, str, str]]:
    """A tree object's entries: name -> (mode, type, id)."""
    entries = {}
    at = 0
    while at < len(data):
        space = data.index(b" ", at)
        nul = data.index(b"\0", space)
        mode = data[at:space].decode()
        name = data[space + 1:nul].decode("utf-8", "surrogateescape")
        sha = data[nul + 1:nul + 21].hex()
        kind = "tree" if mode == "40000" else "commit" if mode == "160000" else "blob"
        entries[name] = (mode.rjust(6, "0"), kind, sha)
        at = nul + 21
    return entries


@lru_cache(maxsize=4096)
def folder_entries(top: str, commit: str, folder: str) -> dict | None:
    """The entries of *folder* ("" for the top) in *commit*, or None."""
    found = reader(top).get(f"{commit}:{folder}" if folder else f"{commit}^{{tree}}")
    if found is None or found[1] != "tree":
        return None
    return _parse_tree(found[2])


# After this many folders of one commit were looked up one by one, the
# whole tree is listed at once (`git ls-tree -r`, a fraction of a second
# for the kernel): a scan reads thousands of folders, a check of one
# patch a handful.
WHOLE_TREE_AFTER = 32
_folders_asked: dict[tuple[str, str], int] = {}


@lru_cache(maxsize=4)
def whole_tree(top: str, commit: str) -> dict | None:
    """Every entry of *commit*, trees too, by path: (mode, type, id)."""
    result = run(["git", "-C", top, "ls-tree", "-r", "-t", "-z", "--full-tree",
                  commit], check=False, timeout=READ_TIMEOUT)
    if result.returncode != 0:
        return None
    entries = {}
    for line in result.stdout.split("\0"):
        if line:
            info, _, path = line.partition("\t")
            mode, kind, sha = info.split()
            entries[path] = (mode, kind, sha)
    return entries


def entry(top: str, commit: str, path: str) -> tuple[str, str, str] | None:
    """(mode, type, id) of *path* in *commit*, or None when it has none:
    from its folder's tree object, or from the whole tree once many
    folders of the commit were asked for."""
    folder, _, name = path.rpartition("/")
    key = (top, commit)
    if _folders_asked.get(key, 0) >= WHOLE_TREE_AFTER:
        listing = whole_tree(top, commit)
        if listing is not None:
            return listing.get(path)
    before = folder_entries.cache_info().misses
    entries = folder_entries(top, commit, folder)
    if folder_entries.cache_info().misses > before:
        _folders_asked[key] = _folders_asked.get(key, 0) + 1
    return entries.get(name) if entries is not None else None


class _BlobCache:
    """Blob contents by id, up to BLOB_CACHE_BYTES (a blob never changes)."""

    def __init__(self) -> None:
        self.items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self.size = 0

    def get(self, top: str, sha: str) -> bytes | None:
        key = (top, sha)
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        found = reader(top).get(sha)
        if found is None or found[1] != "blob":
            return None
        data = found[2]
        self.items[key] = data
        self.size += len(data)
        while self.size > BLOB_CACHE_BYTES and len(self.items) > 1:
            _, old = self.items.popitem(last=False)
            self.size -= len(old)
        return data


blobs = _BlobCache()
