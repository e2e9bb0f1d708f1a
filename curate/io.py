"""Writing outputs: atomically (temp file + rename), deterministically, nothing partial.

jsonl rows carry `meta` as an object and NaN scores as null (JSON has no NaN); parquet and the Arrow
folder (`save_to_disk`) keep `meta` as a JSON string and NaN as NaN.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from curate.errors import CurateError

FORMAT_VERSION = 1
_UMASK = os.umask(0)
os.umask(_UMASK)


def _public(path) -> None:
    """mkstemp/mkdtemp create private files; outputs get the permissions any new file would."""
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~_UMASK)


@contextmanager
def staged_folder(target: Path, before_discard: Callable[[Path, Path], None] | None = None) -> Iterator[Path]:
    """Yield a new empty folder beside `target` to write into. When the block ends without an error the folder
    replaces `target` (two renames: a reader never sees a half-written folder); on an error it is removed and
    `target` is left as it was. `before_discard(old, new)` runs after the swap, while the replaced folder
    still exists, e.g. to move over what should outlive it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    _public(staged)
    try:
        yield staged
        if target.exists():
            old = staged.with_suffix(".old")
            target.rename(old)
            staged.rename(target)
            try:
                if before_discard is not None:
                    before_discard(old, target)
            finally:
                shutil.rmtree(old, ignore_errors=True)
                if old.exists():
                    warnings.warn(f"could not remove the replaced folder {old}; delete it by hand", stacklevel=3)
        else:
            staged.rename(target)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)


def check_replaceable(folder: Path, marker: str, what: str) -> None:
    """A folder a command replaces whole must be missing, empty, or one it wrote before (holding `marker`)."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / marker).exists())):
        raise CurateError(f"exists and is not {what} (no {marker}); choose another folder", str(folder))


def json_ready(value):
    """NaN -> None, recursively, so the line is valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    return value


def row_for_json(row: dict) -> dict:
    row = dict(row)
    if isinstance(row.get("meta"), str):
        row["meta"] = json.loads(row["meta"])
    return json_ready(row)


def dumps(obj) -> str:
    return json.dumps(json_ready(obj), ensure_ascii=False, allow_nan=False, default=str)


def write_text_atomic(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for line in lines:
                f.write(line)
                f.write("\n")
        _public(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj) -> None:
    write_text_atomic(path, [json.dumps(json_ready(obj), ensure_ascii=False, indent=2, allow_nan=False, default=str)])


def as_table(ds):
    """The rows of `ds` as one Arrow table (applies a pending selection; far faster than
    Dataset.flatten_indices, which goes through map)."""
    return ds.with_format("arrow")[:]


def save_arrow(ds, path: Path) -> None:
    """`ds` as one Arrow stream file, the format `Dataset.from_file` memory-maps back."""
    import pyarrow as pa

    table = as_table(ds)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def write_dataset(ds, directory: Path, stem: str, formats: list[str], fingerprint: str) -> list[str]:
    """Write `ds` as <stem>.jsonl / <stem>.parquet / <stem>/ (Arrow); returns the file names."""
    written = []
    if "jsonl" in formats:
        write_text_atomic(directory / f"{stem}.jsonl", (dumps(row_for_json(r)) for r in ds))
        written.append(f"{stem}.jsonl")
    if "parquet" in formats:
        path = directory / f"{stem}.parquet"
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{stem}.", suffix=".parquet.tmp")
        os.close(fd)
        try:
            ds.to_parquet(tmp)
            _public(tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        written.append(path.name)
    if "arrow" in formats:
        target = directory / stem
        tmp = Path(tempfile.mkdtemp(dir=directory, prefix=f".{stem}.", suffix=".tmp"))
        try:
            from datasets import Dataset

            # a fixed fingerprint keeps state.json byte-identical across runs
            flat = Dataset(as_table(ds), info=ds.info.copy(), fingerprint=fingerprint)
            flat.save_to_disk(str(tmp))
            _public(tmp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        written.append(f"{stem}/")
    return written


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
