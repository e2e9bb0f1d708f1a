"""Writing outputs: atomically (temp file + rename), deterministically, nothing partial; and reading
files back (JSON Lines, content digests).

jsonl rows carry `meta` as an object and NaN scores as null (JSON has no NaN); parquet and the Arrow
folder (`save_to_disk`) keep `meta` as a JSON string and NaN as NaN.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from json.encoder import c_make_encoder, encode_basestring
from pathlib import Path
from typing import Iterable

from curate.atomic import make_public as _public
from curate.errors import CurateError

# Files are written with a fixed layout (Arrow record batches and parquet row groups of this many rows,
# from contiguous columns) so that their bytes depend on the rows only, never on how a table was built.
BATCH_ROWS = 8192


def check_replaceable(folder: Path, marker: str, what: str) -> None:
    """A folder a command replaces whole must be missing, empty, or one it wrote before (holding `marker`)."""
    folder = Path(folder)
    if folder.is_symlink():
        raise CurateError(f"is a symbolic link, not {what}; give the folder it points to, or another folder", str(folder))
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / marker).exists())):
        raise CurateError(f"exists and is not {what} (no {marker}); choose another folder", str(folder))


def json_ready(value):
    """NaN and infinities -> None, recursively, so the line is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    return value


def row_for_json(row: dict) -> dict:
    """A row as JSON Lines hold it: `meta` as an object, a NaN score as null. Only the row's own values are
    looked at here (scores are top-level); `dumps` deals with a NaN nested deeper."""
    row = dict(row)
    if isinstance(row.get("meta"), str):
        row["meta"] = json.loads(row["meta"])
    for k, v in row.items():
        if v.__class__ is float and not math.isfinite(v):  # NaN (JSON has none)
            row[k] = None
    return row


def dumps(obj) -> str:
    """One JSON line; NaN or inf anywhere becomes null (JSON has neither). The common case is one C call."""
    try:
        return _encode(obj)
    except ValueError:
        return _encode(json_ready(obj))


def json_encoder(sort_keys: bool = False, allow_nan: bool = True, default=None):
    """A function equal to `json.dumps(obj, ensure_ascii=False, sort_keys=..., allow_nan=..., default=...)`.
    json.dumps builds its encoder on every call; the json module's C encoder made once writes the same text,
    4x faster for a small object (a row's `meta`, a drop's detail). No circular-reference check: what curate
    encodes (rows, records, details, manifests) are trees."""
    if c_make_encoder is None:  # a Python without the json module's C part
        return lambda obj: json.dumps(obj, ensure_ascii=False, sort_keys=sort_keys, allow_nan=allow_nan,
                                      default=default)
    encoder = c_make_encoder(None, default or _not_json, encode_basestring, None, ": ", ", ", sort_keys, False,
                             allow_nan)
    return lambda obj: "".join(encoder(obj, 0))


def _not_json(value):
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_encode = json_encoder(allow_nan=False, default=str)


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


def quiet_datasets():
    """The `datasets` module with its progress bars off: curate reports its own progress. Imported only where
    a run uses it (hub and URL sources, Arrow outputs): the import alone costs a second and a half."""
    import datasets

    datasets.disable_progress_bars()
    return datasets


def as_table(ds):
    """The rows of `ds` as one contiguous Arrow table (applies a pending selection; far faster than
    Dataset.flatten_indices, which goes through map)."""
    return ds.with_format("arrow")[:].combine_chunks()


def stable_schema(table):
    """`table` with schema metadata that depends on its columns only: `datasets` adds the fingerprint of
    however the table was computed, which would make the bytes depend on the run's history."""
    meta = dict(table.schema.metadata or {})
    if b"huggingface" in meta:
        info = json.loads(meta[b"huggingface"])
        meta[b"huggingface"] = json.dumps({"info": {"features": info.get("info", {}).get("features")}}).encode()
    return table.replace_schema_metadata(meta or None)


def save_arrow(ds, path: Path) -> None:
    """`ds` as one Arrow stream file of fixed-size record batches, the format `Dataset.from_file`
    memory-maps back."""
    import pyarrow as pa

    table = as_table(ds)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=BATCH_ROWS)


def write_parquet(table, path: Path) -> None:
    """`table` as parquet with fixed-size row groups, atomically."""
    import pyarrow.parquet as pq

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(stable_schema(table.combine_chunks()), tmp, row_group_size=BATCH_ROWS)
        _public(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_dataset(ds, directory: Path, stem: str, formats: list[str], fingerprint: str) -> list[str]:
    """Write `ds` as <stem>.jsonl / <stem>.parquet / <stem>/ (Arrow); returns the file names."""
    written = []
    if "jsonl" in formats:
        write_text_atomic(directory / f"{stem}.jsonl", (dumps(row_for_json(r)) for r in ds))
        written.append(f"{stem}.jsonl")
    if "parquet" in formats:
        write_parquet(as_table(ds), directory / f"{stem}.parquet")
        written.append(f"{stem}.parquet")
    if "arrow" in formats:
        target = directory / stem
        tmp = Path(tempfile.mkdtemp(dir=directory, prefix=f".{stem}.", suffix=".tmp"))
        try:
            Dataset = quiet_datasets().Dataset

            # a fixed fingerprint keeps state.json byte-identical across runs
            flat = Dataset(as_table(ds), info=ds.info.copy(), fingerprint=fingerprint)
            # an empty table still gets one (empty) shard: with none, load_from_disk cannot read the folder
            flat.save_to_disk(str(tmp), num_shards=1 if len(flat) == 0 else None)
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


def file_digest(path, digest=None) -> tuple[str, int]:
    """(hex digest, size in bytes) of a file's content, read 1 MiB at a time: sha256 unless `digest` (a
    fresh hashlib object) is given."""
    digest = digest if digest is not None else hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def arrow_batches(data):
    """In-memory rows as Arrow tables of at most 8,192 rows."""
    import pyarrow as pa

    if isinstance(data, list):
        for i in range(0, len(data), 8192):
            yield pa.Table.from_pylist(data[i:i + 8192])
        return
    table = data if isinstance(data, pa.Table) else data.with_format("arrow")[:]
    for i in range(0, table.num_rows, 8192):
        yield table.slice(i, 8192)
