"""Read a source into canonical rows, one record at a time.

Local JSON Lines, JSON and csv are parsed by curate (`sources.files`), so that a malformed line is reported
with its file and line number and `on_error: skip` can drop just that line (into the ledger). Parquet is
read in record batches with pyarrow; hub datasets and URLs go through `datasets.load_dataset`.
Every record either becomes a canonical row or a skipped record with its location and reason: nothing read
is lost.

Locations (`meta.source_row`, the rejects' `where`) name files relative to the recipe's folder (`base_dir`),
so outputs do not depend on the directory curate runs from; error messages name files as the user can
open them from here.
"""

from __future__ import annotations

import json
import lzma
import os
from dataclasses import dataclass, field
from typing import Iterator

from curate.errors import CurateError
from curate.io import arrow_batches, file_digest, quiet_datasets
from curate.rows import make_row
from curate.sources.adapters import RowError, check_messages, detect_adapter, get_adapter
from curate.sources.files import (
    LocalFile,
    Location,
    csv_records,
    expand_paths,
    file_kind,
    json_records,
    jsonl_records,
    parquet_records,
)


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
        elif src.path and is_url(src.path):
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

    def convert(self, loc: Location, record) -> dict | None:
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

    def add_files(self, files: list[str]) -> None:
        """Record the local files the source reads, with their sha256 and size, in `inputs`."""
        for path in files:
            sha, size = file_digest(path)
            self.inputs.append({"path": LocalFile(path, self.base_dir).stable, "sha256": sha, "bytes": size})

    def skip(self, loc: Location, reason: str, raw: str, message: str | None = None) -> None:
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


# -- local files -----------------------------------------------------------------------------------


def _local_records(src, where, reader: SourceReader) -> Iterator[tuple[Location, object]]:
    files = expand_paths(src, where)
    kinds = [file_kind(path, src.file_type, where) for path in files]  # every file checked before any is read
    reader.add_files(files)
    for path, kind in zip(files, kinds):
        f = LocalFile(path, reader.base_dir)
        try:
            if kind == "jsonl":
                yield from jsonl_records(f, reader)
            elif kind == "json":
                yield from json_records(f, reader)
            elif kind == "csv":
                yield from csv_records(f, src.csv_columns, reader)
            else:
                yield from parquet_records(f)
        except (OSError, EOFError, lzma.LZMAError, ValueError) as e:  # a truncated or corrupt compressed file
            raise CurateError(f"could not read the file: {type(e).__name__}: {e}", path) from None


# -- urls and the hub ----------------------------------------------------------------------------------


def is_url(path) -> bool:
    paths = path if isinstance(path, list) else [path]
    return all(isinstance(p, str) and p.startswith(("http://", "https://")) for p in paths)


def _url_records(src, where, reader: SourceReader):
    """Files on the web (a raw GitHub file, say), fetched by `datasets` with its json/csv/parquet builder."""
    load_dataset = quiet_datasets().load_dataset

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
    load_dataset = quiet_datasets().load_dataset

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

def read_chunk(name: str, src, base_dir: str, path: str, start: int, end: int, first_line: int,
               adapter: str) -> tuple[list[dict], list[Skipped]]:
    """The canonical rows of the lines of `path` that start in [start, end) (the adapter already decided)."""
    reader = SourceReader(name, src.model_copy(update={"format": adapter}), base_dir)
    f = LocalFile(path, reader.base_dir)
    rows = [row for loc, record in jsonl_records(f, reader, start, end, first_line)
            if (row := reader.convert(loc, record)) is not None]
    return rows, reader.skipped


def first_record(name: str, src, base_dir: str, path: str):
    """The first record of a JSON Lines file (None if it has none), to decide `format: auto`."""
    reader = SourceReader(name, src, base_dir)
    for loc, record in jsonl_records(LocalFile(path, reader.base_dir), reader):
        return loc, record
    return None


def _memory_records(src, reader: SourceReader):
    """Rows given in memory (Pipeline.run(data)): a datasets.Dataset, a pyarrow Table or a list of dicts."""
    reader.inputs.append({"memory": True, "sha256": src.data_fingerprint()})
    n = 0
    for table in arrow_batches(src.data):
        for record in table.to_pylist():
            n += 1
            yield Location(f"data row {n}", f"data row {n}"), record


def _raw_text(record) -> str:
    try:
        return json.dumps(record, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(record)[:10000]
