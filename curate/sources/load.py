"""Read a source into canonical rows, one record at a time.

Local JSON Lines, JSON and csv are parsed here, so that a malformed line is reported with its file and line
number and `on_error: skip` can drop just that line (into the ledger). Files may be compressed (`.gz`,
`.bz2`, `.xz`, `.zst`: read transparently, as `datasets` does) and may start with a UTF-8 byte-order mark.
JSON Lines are split on "\\n" only: U+2028, U+2029 and U+0085 are characters inside strings, not line ends.
Parquet is read in record batches with pyarrow; hub datasets and URLs go through `datasets.load_dataset`.
Every record either becomes a canonical row or a skipped record with its location and reason: nothing read
is lost.

Locations (`meta.source_row`, the rejects' `where`) name files relative to the recipe's folder (`base_dir`),
so outputs do not depend on the directory curate runs from; error messages name files as the user can
open them from here.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import hashlib
import io
import json
import lzma
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from curate.errors import CurateError
from curate.rows import make_row
from curate.sources.adapters import RowError, check_messages, detect_adapter, get_adapter

EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zstd")


@dataclass
class Skipped:
    """A line or record that could not become a row (kept for the ledger)."""

    where: str
    reason: str
    raw: str


@dataclass
class LoadedSource:
    name: str
    rows: list[dict]
    skipped: list[Skipped]
    adapter: str
    inputs: list[dict] = field(default_factory=list)  # files with sha256, or the hub dataset's identity

    @property
    def rows_in(self) -> int:
        return len(self.rows) + len(self.skipped)


class SourceReader:
    """Iterate a source's canonical rows; skipped records collect in `skipped` as they are met.

    `inputs` (files with sha256, or the hub dataset's identity) is known once iteration has started;
    `adapter` once the first record was read. Iterating raises CurateError for a bad source (no file,
    a malformed line under `on_error: fail`, no rows at all)."""

    def __init__(self, name: str, src, base_dir: str | os.PathLike = "."):
        self.name, self.src, self.base_dir = name, src, os.path.abspath(base_dir)
        self.where = f"sources.{name}"
        self.skipped: list[Skipped] = []
        self.inputs: list[dict] = []
        self.adapter: str = src.format
        self._adapter = None
        self.rows_read = 0

    def __iter__(self) -> Iterator[dict]:
        src, where = self.src, self.where
        if src.data is not None:
            records = _memory_records(src, self)
        elif src.path and _is_url(src.path):
            records = _url_records(src, where, self)
        elif src.path:
            records = _local_records(src, where, self)
        else:
            records = _hub_records(src, where, self)
        rows = 0
        for loc, record in records:
            if src.limit and rows + len(self.skipped) >= src.limit:
                break
            row = self.convert(loc, record)
            if row is not None:
                rows += 1
                yield row
        self.rows_read = rows + len(self.skipped)
        self.check_some(rows)

    def convert(self, loc: "Location", record) -> dict | None:
        """The canonical row of one record, or None (then it is in `skipped`). The first record decides the
        format when it is `auto`."""
        if self._adapter is None:
            src = self.src
            cls = get_adapter(src.format, f"{self.where}.format") if src.format != "auto" else detect_adapter(
                set(record) if isinstance(record, dict) else set(), f"{self.where} ({loc.shown})"
            )
            self._adapter = cls(cls.Options.model_validate(src.options))
            self.adapter = self._adapter.name
        adapter = self._adapter
        try:
            if not isinstance(record, dict):
                raise RowError(f"expected a JSON object, got {type(record).__name__}")
            messages, meta = adapter.convert(record)
            check_messages(messages)
            meta["source_row"] = loc.stable
            return make_row(self.name, messages, meta)
        except RowError as e:
            self.skip(loc, f"{adapter.name}: {e}", _raw_text(record), f"{e} (format {adapter.name})")
        except UnicodeEncodeError as e:  # a lone surrogate ("\\ud800" in JSON) is not valid Unicode text
            bad = e.object[e.start:e.end].encode("utf-8", "surrogatepass").hex()
            self.skip(loc, f"{adapter.name}: invalid Unicode (a lone surrogate, 0x{bad}) in the record",
                      _raw_text(record).encode("utf-8", "replace").decode("utf-8"))
        return None

    def check_some(self, rows: int) -> None:
        """A source that gave no row at all is an error (naming empty files)."""
        where = self.where
        if not rows:
            detail = f" ({len(self.skipped)} rows skipped as malformed)" if self.skipped else ""
            empty = [i["path"] for i in self.inputs if i.get("bytes") == 0]
            if empty:
                detail += f"; empty file{'s' if len(empty) > 1 else ''}: {', '.join(empty)}"
            raise CurateError(f"the source has no rows{detail}", where)

    def skip(self, loc: "Location", reason: str, raw: str, message: str | None = None) -> None:
        """Record a record that cannot become a row, or (on_error: fail) stop with `message` (default: the
        reason) and how to skip such records instead."""
        if self.src.on_error == "fail":
            raise CurateError(f"{message or reason}; set on_error: skip to skip such lines", loc.shown)
        self.skipped.append(Skipped(loc.stable, reason, raw))


def load_source(name: str, src, base_dir: str | os.PathLike = ".") -> LoadedSource:
    """The whole source in memory (eval sets, text sets and other small sources)."""
    reader = SourceReader(name, src, base_dir)
    rows = list(reader)
    return LoadedSource(name, rows, reader.skipped, reader.adapter, reader.inputs)


@dataclass(frozen=True)
class Location:
    shown: str  # for messages: the path as given
    stable: str  # for outputs: relative to the recipe's folder


class _File:
    """Where one local file's records come from: its name for messages and for outputs."""

    def __init__(self, path: str, base_dir: str):
        self.path = path
        absolute = os.path.abspath(path)
        # Inside the recipe's folder tree, or beside it: relative; far away (another volume): absolute.
        rel = os.path.relpath(absolute, base_dir) if os.path.splitdrive(absolute)[0] == os.path.splitdrive(base_dir)[0] else absolute
        self.stable = Path(rel).as_posix()

    def at(self, suffix: str) -> Location:
        return Location(f"{self.path}{suffix}", f"{self.stable}{suffix}")


# -- local files -----------------------------------------------------------------------------------


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


def file_sha256(path: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _local_records(src, where, reader: SourceReader) -> Iterator[tuple[Location, object]]:
    files = expand_paths(src, where)
    kinds = [file_kind(path, src.file_type, where) for path in files]  # every file checked before any is read
    for path in files:
        sha, size = file_sha256(path)
        reader.inputs.append({"path": _File(path, reader.base_dir).stable, "sha256": sha, "bytes": size})
    for path, kind in zip(files, kinds):
        f = _File(path, reader.base_dir)
        try:
            if kind == "jsonl":
                yield from _jsonl_records(f, reader)
            elif kind == "json":
                yield from _json_records(f, reader)
            elif kind == "csv":
                yield from _csv_records(f, src.csv_columns, reader)
            else:
                yield from _parquet_records(f)
        except (OSError, EOFError, lzma.LZMAError, ValueError) as e:  # a truncated or corrupt compressed file
            raise CurateError(f"could not read the file: {type(e).__name__}: {e}", path) from None


def _jsonl_records(f: _File, reader: SourceReader, start: int = 0, end: int | None = None, first_line: int = 1):
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


def _json_records(f: _File, reader: SourceReader):
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
        yield from _jsonl_records(f, reader)
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


def _csv_records(f: _File, csv_columns, reader: SourceReader):
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


def _parquet_records(f: _File, batch_rows: int = 4096):
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


# -- urls and the hub ----------------------------------------------------------------------------------


def _is_url(path) -> bool:
    paths = path if isinstance(path, list) else [path]
    return all(isinstance(p, str) and p.startswith(("http://", "https://")) for p in paths)


def _url_records(src, where, reader: SourceReader):
    """Files on the web (a raw GitHub file, say), fetched by `datasets` with its json/csv/parquet builder."""
    from datasets import load_dataset

    urls = src.path if isinstance(src.path, list) else [src.path]
    kind = file_kind(urls[0].split("?")[0], src.file_type, where)
    builder = {"jsonl": "json"}.get(kind, kind)
    try:
        ds = load_dataset(builder, data_files=urls, split="train")
    except Exception as e:
        raise CurateError(f"could not fetch {urls}: {type(e).__name__}. Without network, point the source at a "
                          f"local copy: --set {where}.path=FILE", where) from None
    reader.inputs += [{"url": u} for u in urls] + [{"fingerprint": ds._fingerprint}]
    for i, record in enumerate(ds):
        yield Location(f"{urls[0]} row {i + 1}", f"{urls[0]} row {i + 1}"), record


def _hub_records(src, where, reader: SourceReader):
    from datasets import load_dataset

    try:
        ds = load_dataset(src.hub, src.config, split=src.split, revision=src.revision)
    except Exception as e:
        raise CurateError(
            f"could not load hub dataset {src.hub!r} (config {src.config}, split {src.split}): "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}. Without network, point the "
            f"source at a local copy: --set {where}.path=FILE",
            where,
        ) from None
    reader.inputs.append({"hub": src.hub, "config": src.config, "split": src.split, "revision": src.revision,
                          "fingerprint": ds._fingerprint})
    for i, record in enumerate(ds):
        loc = f"{src.hub}[{src.split}] row {i + 1}"
        yield Location(loc, loc), record


# -- JSON Lines in chunks: the engine reads one big file on every core ----------------------------------

CHUNK_BYTES = 32 << 20


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


def read_chunk(name: str, src, base_dir: str, path: str, start: int, end: int, first_line: int,
               adapter: str) -> tuple[list[dict], list[Skipped]]:
    """The canonical rows of the lines of `path` that start in [start, end) (the adapter already decided)."""
    reader = SourceReader(name, src.model_copy(update={"format": adapter}), base_dir)
    f = _File(path, reader.base_dir)
    rows = [row for loc, record in _jsonl_records(f, reader, start, end, first_line)
            if (row := reader.convert(loc, record)) is not None]
    return rows, reader.skipped


def first_record(name: str, src, base_dir: str, path: str):
    """The first record of a JSON Lines file (None if it has none), to decide `format: auto`."""
    reader = SourceReader(name, src, base_dir)
    for loc, record in _jsonl_records(_File(path, reader.base_dir), reader):
        return loc, record
    return None


def _memory_records(src, reader: SourceReader):
    """Rows given in memory (Pipeline.run(data)): a datasets.Dataset, a pyarrow Table or a list of dicts."""
    from curate.recipe import _arrow_batches

    reader.inputs.append({"memory": True, "sha256": src.data_fingerprint()})
    n = 0
    for table in _arrow_batches(src.data):
        for record in table.to_pylist():
            n += 1
            yield Location(f"data row {n}", f"data row {n}"), record


def _raw_text(record) -> str:
    try:
        return json.dumps(record, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(record)[:10000]
