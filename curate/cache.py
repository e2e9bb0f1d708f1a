"""The step cache: one folder per entry, verified on every read.

An entry is written into a hidden temporary folder, its files' checksums go into `entry.json` (written
last), and the folder is renamed into place; so an entry without a valid `entry.json` was never finished.
On read every file is checked against its checksum: a corrupt, truncated or edited entry is removed and
the step recomputed, with a warning. Two processes that need the same entry take turns (a lock per entry):
the second one reads what the first one wrote. Leftovers of killed writers are removed by the next run.

Keys are made by the engine from the inputs, every step up to this one, and the code of each step
(`code_token`): editing a step's module, or a `curate.steps` module it uses, invalidates its entries.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import types
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from curate.atomic import make_public, path_lock
from curate.errors import CurateError
from curate.faults import fault_point
from curate.io import file_digest

ENTRY = "entry.json"
T = TypeVar("T")


def file_checksum(path: Path) -> str:
    return file_digest(path, hashlib.blake2b(digest_size=20))[0]


@lru_cache(maxsize=None)
def code_token(cls: type) -> str:
    """A fingerprint of the source of `cls`'s module, of the curate modules of its base classes, and of the
    `curate.steps` modules these import from, transitively: a step split into helper modules (its
    shingling, its forward passes) computes with their code too."""
    digest = hashlib.sha256()
    todo = [getattr(klass, "__module__", "") for klass in cls.__mro__]
    seen = set()
    while todo:
        module = todo.pop(0)
        if not module.startswith("curate.") or module in seen:
            continue
        seen.add(module)
        loaded = sys.modules.get(module)
        path = getattr(loaded, "__file__", None)
        if path and Path(path).is_file():
            digest.update(module.encode() + b"\0" + Path(path).read_bytes())
        for value in vars(loaded).values() if loaded is not None else ():
            used = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
            if isinstance(used, str) and used.startswith("curate.steps."):
                todo.append(used)
    return digest.hexdigest()[:16]


class StepCache:
    def __init__(self, folder: str | Path, warn: Callable[[str], None] | None = None):
        self.folder = Path(folder)
        self.warn = warn or (lambda message: None)

    def _path(self, key: str) -> Path:
        return self.folder / key

    @contextmanager
    def entry(self, key: str) -> Iterator[None]:
        """Hold the entry's lock while looking it up and, on a miss, computing and storing it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with path_lock(self._path(key), wait=True, what="this cache entry"):
            yield

    def load(self, key: str, read: Callable[[Path], T]) -> T | None:
        """`read(folder)` of a verified entry, or None (missing, or bad: then removed with a warning)."""
        folder = self._path(key)
        index = folder / ENTRY
        if not index.is_file():
            if folder.exists():  # a folder without its index was never finished
                shutil.rmtree(folder, ignore_errors=True)
            return None
        problem = self._verify(folder, index)
        if problem is None:
            try:
                return read(folder)
            except Exception as e:  # a file that matched its checksum but cannot be read: treat as corrupt
                problem = f"unreadable ({type(e).__name__}: {e})"
        self.warn(f"cache entry {key} is {problem}; recomputing it")
        shutil.rmtree(folder, ignore_errors=True)
        return None

    @staticmethod
    def _verify(folder: Path, index: Path) -> str | None:
        try:
            files = json.loads(index.read_text(encoding="utf-8"))["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return "corrupt (its index does not parse)"
        for name, want in files.items():
            path = folder / name
            if not path.is_file():
                return f"incomplete ({name} is missing)"
            if path.stat().st_size != want["bytes"] or file_checksum(path) != want["checksum"]:
                return f"corrupt ({name} does not match its checksum)"
        return None

    def store(self, key: str, write: Callable[[Path], None]) -> Path:
        """`write(folder)` into a temporary folder, checksum its files, and move it into place."""
        tmp = self.begin(key)
        try:
            write(tmp)
            return self.commit(key, tmp)
        finally:
            self.abort(tmp)

    def begin(self, key: str) -> Path:
        """A new temporary folder for the entry `key`; fill it, then `commit` (or `abort`). Hold the entry's
        lock meanwhile."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.folder, prefix=f".{key}.", suffix=".tmp"))

    def commit(self, key: str, tmp: Path) -> Path:
        """Checksum the files of `tmp` into its index and move it into place as the entry `key`."""
        fault_point("cache-write")
        files = {p.name: {"bytes": p.stat().st_size, "checksum": file_checksum(p)}
                 for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / ENTRY).write_text(json.dumps({"key": key, "files": files}, indent=1), encoding="utf-8")
        make_public(tmp)
        target = self._path(key)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
        return target

    @staticmethod
    def abort(tmp: Path) -> None:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

    def remove_stale(self) -> None:
        """Remove temporary folders of writers that are gone (their entry's lock is free)."""
        if not self.folder.is_dir():
            return
        for tmp in self.folder.glob(".*.tmp"):
            key = tmp.name[1:].split(".", 1)[0]
            try:
                with path_lock(self._path(key), what="this cache entry"):
                    shutil.rmtree(tmp, ignore_errors=True)
            except CurateError:
                continue  # a live writer holds it
