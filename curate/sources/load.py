"""Read a source into canonical rows.

Local JSON and JSON Lines are parsed here, line by line, so that a malformed line is reported with
its file and line number and `on_error: skip` can drop just that line (into the ledger). csv, parquet
and hub datasets go through `datasets.load_dataset`. Every row either becomes a canonical row or a
skipped record with its location and reason: nothing read is lost.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from curate.errors import CurateError
from curate.rows import make_row
from curate.sources.adapters import RowError, check_messages, detect_adapter, get_adapter

EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


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


def load_source(name: str, src) -> LoadedSource:
    where = f"sources.{name}"
    skipped: list[Skipped] = []
    if src.path and _is_url(src.path):
        records, inputs = _url_records(src, where)
    elif src.path:
        records, inputs = _local_records(src, where, skipped)
    else:
        records, inputs = _hub_records(src, where)

    rows: list[dict] = []
    adapter = None
    for loc, record in records:
        if src.limit and len(rows) + len(skipped) >= src.limit:
            break
        if adapter is None:  # the first record decides `auto`
            cls = get_adapter(src.format, f"{where}.format") if src.format != "auto" else detect_adapter(
                set(record) if isinstance(record, dict) else set(), f"{where} ({loc})"
            )
            adapter = cls(cls.Options.model_validate(src.options))
        try:
            if not isinstance(record, dict):
                raise RowError(f"expected a JSON object, got {type(record).__name__}")
            messages, meta = adapter.convert(record)
            check_messages(messages)
        except RowError as e:
            if src.on_error == "fail":
                raise CurateError(f"{e} (format {adapter.name}; set on_error: skip to skip such rows)", loc) from None
            skipped.append(Skipped(loc, f"{adapter.name}: {e}", _raw_text(record)))
            continue
        meta["source_row"] = loc
        rows.append(make_row(name, messages, meta))

    if not rows:
        detail = f" ({len(skipped)} rows skipped as malformed)" if skipped else ""
        raise CurateError(f"the source has no rows{detail}", where)
    return LoadedSource(name, rows, skipped, adapter.name if adapter else src.format, inputs)


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


def _local_records(src, where, skipped) -> tuple[Iterator[tuple[str, dict]], list[dict]]:
    files = expand_paths(src, where)
    inputs, readers = [], []
    for path in files:
        data = Path(path).read_bytes()
        inputs.append({"path": path, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
        kind = src.file_type or EXTENSIONS.get(Path(path).suffix.lower())
        if kind is None:
            raise CurateError(f"cannot tell the file type of {path!r}; set file_type: json, jsonl, csv or parquet", f"{where}.file_type")
        if kind in ("json", "jsonl"):
            readers.append(_json_records(path, _decode(path, data), kind, src.on_error, skipped))
        elif kind == "csv":
            readers.append(_csv_records(path, _decode(path, data), src.csv_columns, src.on_error, skipped))
        else:
            readers.append(_parquet_records(path))
    return (rec for reader in readers for rec in reader), inputs


def _decode(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise CurateError(f"not valid UTF-8: byte 0x{data[e.start]:02x} (convert the file to UTF-8)", f"{path}:{line}") from None


def _json_records(path, text, kind, on_error, skipped):
    if kind == "json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            if e.msg != "Extra data":
                raise CurateError(f"malformed JSON: {e.msg} (column {e.colno})", f"{path}:{e.lineno}") from None
            doc = None  # several JSON values, one per line: read it as JSON Lines
        if doc is not None:
            if isinstance(doc, dict):  # {"data": [...]}: the one list inside
                lists = [v for v in doc.values() if isinstance(v, list)]
                if len(lists) != 1:
                    raise CurateError("expected a JSON array of rows (or an object holding one array)", path)
                doc = lists[0]
            if not isinstance(doc, list):
                raise CurateError(f"expected a JSON array of rows, got {type(doc).__name__}", path)
            for i, record in enumerate(doc):
                yield f"{path} record {i + 1}", record
            return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if on_error == "fail":
                raise CurateError(f"malformed JSON line: {e.msg} (column {e.colno}); set on_error: skip to skip such lines", f"{path}:{n}") from None
            skipped.append(Skipped(f"{path}:{n}", f"malformed JSON: {e.msg}", line))
            continue
        yield f"{path}:{n}", record


def _csv_records(path, text, csv_columns, on_error, skipped):
    """csv with a header line, or headerless with `csv_columns` (MMLU). Line numbers are exact,
    also for quoted fields that span lines."""
    import csv
    import io

    reader = csv.reader(io.StringIO(text, newline=""))
    names = csv_columns
    start = 1
    if names is None:
        names = next(reader, None)
        if names is None:
            return
        start = reader.line_num + 1
    for values in reader:
        where, start = f"{path}:{start}", reader.line_num + 1
        if not values:
            continue
        if len(values) != len(names):
            msg = f"{len(values)} fields where the header has {len(names)}"
            if on_error == "fail":
                raise CurateError(f"{msg}; set on_error: skip to skip such lines", where)
            skipped.append(Skipped(where, f"malformed csv: {msg}", ",".join(values)))
            continue
        yield where, dict(zip(names, values))


def _parquet_records(path):
    from datasets import load_dataset

    try:
        ds = load_dataset("parquet", data_files=path, split="train")
    except Exception as e:  # pyarrow's errors do not say which file
        raise CurateError(f"could not read as parquet: {e}", path) from None
    for i, record in enumerate(ds):
        yield f"{path} row {i + 1}", record


# -- urls and the hub ----------------------------------------------------------------------------------


def _is_url(path) -> bool:
    paths = path if isinstance(path, list) else [path]
    return all(isinstance(p, str) and p.startswith(("http://", "https://")) for p in paths)


def _url_records(src, where):
    """Files on the web (a raw GitHub file, say), fetched by `datasets` with its json/csv/parquet builder."""
    from datasets import load_dataset

    urls = src.path if isinstance(src.path, list) else [src.path]
    kind = src.file_type or EXTENSIONS.get(Path(urls[0].split("?")[0]).suffix.lower())
    builder = {"jsonl": "json"}.get(kind, kind)
    if builder is None:
        raise CurateError(f"cannot tell the file type of {urls[0]!r}; set file_type", f"{where}.file_type")
    try:
        ds = load_dataset(builder, data_files=urls, split="train")
    except Exception as e:
        raise CurateError(f"could not fetch {urls}: {type(e).__name__}. Without network, point the source at a "
                          f"local copy: --set {where}.path=FILE", where) from None
    inputs = [{"url": u} for u in urls] + [{"fingerprint": ds._fingerprint}]
    return ((f"{urls[0]} row {i + 1}", record) for i, record in enumerate(ds)), inputs


# -- hub -------------------------------------------------------------------------------------------


def _hub_records(src, where):
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
    inputs = [{"hub": src.hub, "config": src.config, "split": src.split, "revision": src.revision,
               "fingerprint": ds._fingerprint}]
    return ((f"{src.hub}[{src.split}] row {i + 1}", record) for i, record in enumerate(ds)), inputs


def _raw_text(record) -> str:
    try:
        return json.dumps(record, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(record)
