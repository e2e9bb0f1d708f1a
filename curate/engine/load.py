"""Sources into the row store's base: canonical rows, in parts of `executor.part_rows`, written as they are read.

No more than one part of rows is held as Python objects at a time. Lines the sources could not turn into rows
(`on_error: skip`) are kept for the ledger in `skipped.jsonl`. With every source a local file, the base is
cached under the sha256 of the files, so a re-run reads Arrow instead of parsing JSON again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from curate.engine.store import BASE_SCHEMA, ROW, RowStore, part_name, write_part
from curate.io import dumps

LOAD = "load.json"
SKIPPED = "skipped.jsonl"


def input_fingerprint(recipe) -> list | None:
    """What the loaded rows depend on, known before reading them: each local file's sha256 (None when a
    source is a hub dataset or a URL, whose content is only known once loaded)."""
    from curate.sources.load import expand_paths, file_sha256

    out = []
    for name, src in recipe.sources.items():
        if getattr(src, "data", None) is not None:
            out.append([name, "in-memory", src.data_fingerprint()])
            continue
        if not src.path or any(str(p).startswith(("http://", "https://")) for p in
                               (src.path if isinstance(src.path, list) else [src.path])):
            return None
        out.append([name, [file_sha256(p)[0] for p in expand_paths(src, f"sources.{name}")]])
    return out


def load_sources(recipe, folder: Path, reporter) -> dict:
    """Read every source into `folder` (base parts and skipped.jsonl). Returns what the manifest and the
    ledger need: {"bounds", "sources", "rows_in", "skipped"}."""
    from curate.sources.load import SourceReader

    folder.mkdir(parents=True, exist_ok=True)
    bounds, buffer, info, rows_in, skipped = [0], [], {}, 0, 0

    def flush():
        if buffer:
            write_part(folder / part_name(len(bounds) - 1), pa.Table.from_pylist(buffer, schema=BASE_SCHEMA))
            bounds.append(bounds[-1] + len(buffer))
            buffer.clear()

    with open(folder / SKIPPED, "w", encoding="utf-8", newline="\n") as skips:
        for name, src in recipe.sources.items():
            reporter.loading(name)
            reader = SourceReader(name, src, recipe.base_dir)
            for row in reader:
                row[ROW] = bounds[-1] + len(buffer)
                buffer.append(row)
                if len(buffer) == recipe.executor.part_rows:
                    flush()
            for s in reader.skipped:
                skips.write(dumps({"step": "load", "reason": s.reason, "where": s.where,
                                   "row": {"source": name, "raw": s.raw}}) + "\n")
            skipped += len(reader.skipped)
            rows_in += reader.rows_read
            info[name] = {"adapter": reader.adapter, "inputs": reader.inputs, "rows_read": reader.rows_read,
                          "rows_skipped": len(reader.skipped), "license": src.license or "unknown"}
        flush()
    result = {"bounds": bounds, "sources": info, "rows_in": rows_in, "skipped": skipped}
    (folder / LOAD).write_text(json.dumps(result, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    return result


def read_loaded(folder: Path) -> dict:
    result = json.loads((folder / LOAD).read_text(encoding="utf-8"))
    for i in range(len(result["bounds"]) - 1):
        if not (folder / part_name(i)).is_file():
            raise ValueError(f"{part_name(i)} is missing")
    return result


def store_of(folder: Path, loaded: dict) -> RowStore:
    return RowStore(Path(folder), loaded["bounds"])


def skipped_entries(folder: Path):
    with open(Path(folder) / SKIPPED, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
