"""Local files of a source: finding them, telling their type, decompressing them, and parsing their
records (JSON Lines, JSON, csv, parquet) with the file and line each came from (not a step; `load`
turns the records into rows).

Files may be compressed (`.gz`, `.bz2`, `.xz`, `.zst`: read transparently, as `datasets` does) and may
start with a UTF-8 byte-order mark. JSON Lines are split on "\\n" only: U+2028, U+2029 and U+0085 are
characters inside strings, not line ends. A malformed line is passed to `reader.skip` (the
`SourceReader` reading the file), which skips it or stops, as the source's `on_error` says.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import io
import json
import lzma
import os
from dataclasses import dataclass
from pathlib import Path

from curate.errors import CurateError

EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zstd")


@dataclass(frozen=True)
class Location:
    shown: str  # for messages: the path as given
    stable: str  # for outputs: relative to the recipe's folder


class LocalFile:
    """Where one local file's records come from: its name for messages and for outputs."""

    def __init__(self, path: str, base_dir: str):
        self.path = path
        absolute = os.path.abspath(path)
        # Inside the recipe's folder tree, or beside it: relative; far away (another volume): absolute.
        rel = os.path.relpath(absolute, base_dir) if os.path.splitdrive(absolute)[0] == os.path.splitdrive(base_dir)[0] else absolute
        self.stable = Path(rel).as_posix()

    def at(self, suffix: str) -> Location:
        return Location(f"{self.path}{suffix}", f"{self.stable}{suffix}")


def expand_paths(src, where: str) -> list[str]:
    patterns = src.path if isinstance(src.path, list) else [src.path]
    files: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        matches = [m for m in matches if os.path.isfile(m)]
        if not matches:
            raise CurateError(f"no file matches {pattern!r}", f"{where}.path")
        files += matches
    return files


def file_kind(path: str, file_type: str | None, where: str) -> str:
    """json / jsonl / csv / parquet, from `file_type` or the extension under any compression suffix."""
    if file_type:
        return file_type
    p = Path(path)
    suffix = Path(p.stem).suffix if p.suffix.lower() in COMPRESSED else p.suffix
    kind = EXTENSIONS.get(suffix.lower())
    if kind is None:
        raise CurateError(f"cannot tell the file type of {path!r}; set file_type: json, jsonl, csv or parquet",
                          f"{where}.file_type")
    return kind


def open_binary(path: str):
    """The file's bytes, decompressed by its extension (gzip, bz2, xz, zstd)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rb")
    if suffix == ".bz2":
        return bz2.open(path, "rb")
    if suffix == ".xz":
        return lzma.open(path, "rb")
    if suffix in (".zst", ".zstd"):
        import pyarrow as pa

        return io.BufferedReader(_RawStream(pa.input_stream(path, compression="zstd")), 1 << 20)
    return open(path, "rb")


class _RawStream(io.RawIOBase):
    """A pyarrow input stream as a file object that can read lines."""

    def __init__(self, stream):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


# -- records of each file type ----------------------------------------------------------------------


def jsonl_records(f: LocalFile, reader, start: int = 0, end: int | None = None, first_line: int = 1):
    """Records of a JSON Lines file (or of its lines that start in the byte range [start, end))."""
    with open_binary(f.path) as stream:
        if start:
            stream.seek(start)
        position = start
        for n, raw in enumerate(stream, start=first_line):  # binary lines end at b"\n" only
            if end is not None and position >= end:
                break
            position += len(raw)
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                reader.skip(f.at(f":{n}"), f"not valid UTF-8: byte 0x{raw[e.start]:02x} at column {e.start + 1} "
                            "(convert the file to UTF-8)", raw.decode("utf-8", "replace").rstrip("\r\n"))
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                if n == 1 and line.lstrip().startswith("["):
                    raise CurateError("this looks like one JSON array, not JSON Lines (one object per line): "
                                      "set file_type: json", f.at(":1").shown) from None
                reader.skip(f.at(f":{n}"), f"malformed JSON line: {e.msg} (column {e.colno})", line.rstrip("\r\n"))
                continue
            except RecursionError:
                reader.skip(f.at(f":{n}"), "malformed JSON line: nested too deeply", line[:1000])
                continue
            yield f.at(f":{n}"), record


def json_records(f: LocalFile, reader):
    with open_binary(f.path) as stream:
        data = stream.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise CurateError(f"not valid UTF-8: byte 0x{data[e.start]:02x} (convert the file to UTF-8)", f.at(f":{line}").shown) from None
    if not text.strip():
        return
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg != "Extra data":
            raise CurateError(f"malformed JSON: {e.msg} (column {e.colno})", f.at(f":{e.lineno}").shown) from None
        doc = None  # several JSON values, one per line: read it as JSON Lines
    except RecursionError:
        raise CurateError("malformed JSON: nested too deeply", f.path) from None
    if doc is None:
        del text, data
        yield from jsonl_records(f, reader)
        return
    if isinstance(doc, dict):  # {"data": [...]}: the one list inside
        lists = [v for v in doc.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise CurateError("expected a JSON array of rows (or an object holding one array)", f.path)
        doc = lists[0]
    if not isinstance(doc, list):
        raise CurateError(f"expected a JSON array of rows, got {type(doc).__name__}", f.path)
    for i, record in enumerate(doc):
        yield f.at(f" record {i + 1}"), record


def csv_records(f: LocalFile, csv_columns, reader):
    """csv with a header line, or headerless with `csv_columns` (MMLU). Line numbers are exact,
    also for quoted fields that span lines."""
    import csv

    with open_binary(f.path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        rows = csv.reader(text)
        names = csv_columns
        start = 1
        try:
            if names is None:
                names = next(rows, None)
                if names is None:
                    return
                start = rows.line_num + 1
            for values in rows:
                loc, start = f.at(f":{start}"), rows.line_num + 1
                if not values:
                    continue
                if len(values) != len(names):
                    msg = f"{len(values)} fields where the header has {len(names)}"
                    reader.skip(loc, f"malformed csv: {msg}", ",".join(values), msg)
                    continue
                yield loc, dict(zip(names, values))
        except UnicodeDecodeError as e:
            raise CurateError(f"not valid UTF-8 ({e.reason}; convert the file to UTF-8)", f.at(f":{start}").shown) from None
        except csv.Error as e:
            raise CurateError(f"malformed csv: {e}", f.at(f":{start}").shown) from None


def parquet_records(f: LocalFile, batch_rows: int = 4096):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(f.path)
        batches = pf.iter_batches(batch_size=batch_rows)
        n = 0
        for batch in batches:
            for record in batch.to_pylist():
                n += 1
                yield f.at(f" row {n}"), record
    except (pa.ArrowException, OSError) as e:  # pyarrow's errors do not say which file
        raise CurateError(f"could not read as parquet: {e}", f.path) from None


# -- JSON Lines in chunks: the engine reads one big file on every core ----------------------------------

CHUNK_BYTES = 16 << 20


def jsonl_chunks(path: str, chunk_bytes: int = CHUNK_BYTES) -> list[tuple[int, int, int]]:
    """(start, end, first line number) of byte ranges of a JSON Lines file, each starting at a line."""
    size = os.path.getsize(path)
    bounds, line = [], 1
    with open(path, "rb") as f:
        start = 0
        while start < size:
            f.seek(min(start + chunk_bytes, size))
            f.readline()  # to the end of the line the cut falls in
            end = min(f.tell(), size) if start + chunk_bytes < size else size
            bounds.append((start, end, line))
            f.seek(start)
            remaining, counted = end - start, 0
            while remaining:
                block = f.read(min(remaining, 1 << 24))
                counted += block.count(b"\n")
                remaining -= len(block)
            line += counted
            start = end
    return bounds
