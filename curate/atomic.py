"""Replacing a folder whole, crash-safe, one writer at a time.

- `path_lock(target)`: an advisory lock (flock) per target path, held by one process at a time. Lock files
  live in a per-user folder under the system temp dir (never beside the user's files); they are re-entrant
  within a process.
- `staged_folder(target)`: write a new version of `target` into a hidden sibling, then swap it in with one
  atomic exchange (Linux `renameat2(RENAME_EXCHANGE)`), so that at every instant `target` is either the
  old complete folder or the new one. Where the exchange is not available (another OS, a file system that
  refuses it) two renames are used; a crash between them leaves the old folder as `.NAME.*.old`, which the
  next writer of `target` puts back (`recover`).
- Leftovers of killed writers (`.NAME.*.tmp`, `.NAME.*.old`) are removed by the next writer of `target`:
  holding the lock proves no live process is using them.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from curate.errors import CurateError
from curate.faults import fault_point

_UMASK = os.umask(0)
os.umask(_UMASK)


def make_public(path) -> None:
    """mkstemp/mkdtemp create private files; outputs get the permissions any new file would."""
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~_UMASK)


# -- locks -----------------------------------------------------------------------------------------

_held: dict[str, list] = {}  # lock path -> [fd, depth]: re-entrant within this process
_held_guard = threading.Lock()


def _lock_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    d = Path(tempfile.gettempdir()) / f"curate-locks-{uid}"
    d.mkdir(mode=0o700, exist_ok=True)
    return d


def lock_path(target: Path) -> Path:
    key = hashlib.sha256(os.path.realpath(target).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return _lock_dir() / f"{key}.lock"


@contextmanager
def path_lock(target: Path, *, wait: bool = False, what: str = "this folder") -> Iterator[None]:
    """Hold the lock of `target`. Without `wait`, a lock held by another process is a CurateError that says
    which process holds it; with `wait`, block until it is free."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): one writer is the user's job there
        yield
        return
    path = str(lock_path(target))
    with _held_guard:
        entry = _held.get(path)
        if entry is not None:
            entry[1] += 1
    if entry is None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise CurateError(f"{holder} is writing {what} now; wait for it to finish (or choose another folder)",
                              str(target)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"curate (pid {os.getpid()})".encode(), 0)
        with _held_guard:
            _held[path] = entry = [fd, 1]
    try:
        yield
    finally:
        with _held_guard:
            entry[1] -= 1
            last = entry[1] == 0
            if last:
                del _held[path]
        if last:
            os.close(entry[0])  # closing the descriptor releases the flock


# -- the swap --------------------------------------------------------------------------------------

_exchange_works: bool | None = None


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths; False when this system cannot (then nothing happened)."""
    global _exchange_works
    if _exchange_works is False or os.environ.get("CURATE_NO_EXCHANGE") == "1":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        _exchange_works = False
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        _exchange_works = True
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.ENOTSUP):
        _exchange_works = False
        return False
    raise OSError(err, os.strerror(err), str(a))


def _siblings(target: Path, suffix: str) -> list[Path]:
    prefix = f".{target.name}."
    if not target.parent.is_dir():
        return []
    return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(suffix))


_in_use: set[str] = set()  # temporary folders this process is still working in: never leftovers


@contextmanager
def work_folder(target: Path) -> Iterator[Path]:
    """A temporary folder beside `target` for a writer of it (holding its lock); removed at the end, and by
    the next writer if this process is killed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.work-", suffix=".tmp"))
    _in_use.add(str(folder))
    try:
        yield folder
    finally:
        _in_use.discard(str(folder))
        shutil.rmtree(folder, ignore_errors=True)


def recover(target: Path) -> list[str]:
    """Finish what a killed writer of `target` left: put back a replaced folder when a crash between two
    renames left none at `target`, then remove staging leftovers. Call it holding `path_lock(target)`.
    Returns what was done, for a warning."""
    done = []
    olds = _siblings(target, ".old")
    if not target.exists() and olds:
        olds[-1].rename(target)
        done.append(f"restored {target} from an interrupted swap")
    for p in _siblings(target, ".tmp") + _siblings(target, ".old"):
        if str(p) in _in_use:
            continue
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
        done.append(f"removed {p.name}, left by a killed run")
    return done


@contextmanager
def staged_folder(target: Path, before_swap: Callable[[Path, Path], None] | None = None,
                  what: str = "this folder") -> Iterator[Path]:
    """Yield a new empty folder beside `target` to write into; when the block ends without an error it
    replaces `target` in one atomic exchange. On an error (or a kill) `target` stays as it was.
    `before_swap(old, new)` runs just before the swap while both are complete, e.g. to link over what the
    new folder should keep of the old one: anything it does to `new` is discarded with it on a failure."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with path_lock(target, what=what):
        recover(target)
        staged = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        make_public(staged)
        try:
            yield staged
            if target.exists():
                if before_swap is not None:
                    before_swap(target, staged)
                fault_point("swap")
                if exchange(staged, target):
                    fault_point("after-swap")
                else:
                    old = staged.with_suffix(".old")
                    target.rename(old)
                    fault_point("between-renames")
                    staged.rename(target)
                    fault_point("after-swap")
                    staged = old
            else:
                staged.rename(target)
                fault_point("after-swap")
        finally:
            if staged.exists():
                shutil.rmtree(staged, ignore_errors=True)


def link_tree(src: Path, dst: Path) -> None:
    """Copy `src` (a file or folder) to `dst` as hard links where the file system allows, else as copies."""
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(src, dst)


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)
