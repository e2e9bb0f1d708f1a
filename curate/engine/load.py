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
    from curate.io import file_digest
    from curate.sources.files import expand_paths

    out = []
    for name, src in recipe.sources.items():
        if getattr(src, "data", None) is not None:
            out.append([name, "in-memory", src.data_fingerprint()])
            continue
        if not src.path or any(str(p).startswith(("http://", "https://")) for p in
                               (src.path if isinstance(src.path, list) else [src.path])):
            return None
        out.append([name, [file_digest(p)[0] for p in expand_paths(src, f"sources.{name}")]])
    return out


def load_sources(recipe, folder: Path, reporter, executor=None) -> dict:
    """Read every source into `folder` (base parts and skipped.jsonl). Returns what the manifest and the
    ledger need: {"bounds", "sources", "rows_in", "skipped"}. Big JSON Lines files are read in chunks on
    the executor's workers; everything else in this process."""
    folder.mkdir(parents=True, exist_ok=True)
    part_rows = recipe.executor.part_rows
    bounds, pending, info, rows_in, skipped = [0], [], {}, 0, 0
    schema = pa.schema([f for f in BASE_SCHEMA if f.name != ROW])

    def add(table: pa.Table) -> None:
        pending.append(table)
        while sum(t.num_rows for t in pending) >= part_rows:
            flush(part_rows)

    def flush(n: int) -> None:
        table = pa.concat_tables(pending) if pending else schema.empty_table()  # no copy: write_part combines the head
        head, rest = table.slice(0, n), table.slice(n)
        pending[:] = [rest] if rest.num_rows else []
        if head.num_rows:
            start = bounds[-1]
            head = head.add_column(0, ROW, pa.array(range(start, start + head.num_rows), pa.int64()))
            write_part(folder / part_name(len(bounds) - 1), head)
            bounds.append(start + head.num_rows)

    # Every chunked source's chunks go through one map, in source order: the workers parse the next sources
    # while this process writes parts (or reads a source that is not chunked), and no source's last chunks
    # leave a worker idle.
    plans = {name: _chunk_plan(name, src, recipe.base_dir) if executor is not None and _in_chunks(src) else None
             for name, src in recipe.sources.items()}
    tasks = [(name, *task, schema) for name, plan in plans.items() if plan is not None for task in plan[1]]
    chunks = executor.map(_read_chunk, tasks, n=len(tasks)) if tasks else iter(())
    with open(folder / SKIPPED, "w", encoding="utf-8", newline="\n") as skips:
        for name, src in recipe.sources.items():
            reporter.loading(name)
            if plans[name] is not None:
                reader, chunk_tasks = plans[name]
                tables = _chunk_tables(reader, chunks, len(chunk_tasks))
            else:
                tables, reader = _sequential(name, src, recipe.base_dir, part_rows, schema)
            rows = 0
            for table in tables:
                rows += table.num_rows
                add(table)
            reader.rows_read = rows + len(reader.skipped)
            reader.check_some(rows)
            for s in reader.skipped:
                skips.write(dumps({"step": "load", "reason": s.reason, "where": s.where,
                                   "row": {"source": name, "raw": s.raw}}) + "\n")
            skipped += len(reader.skipped)
            rows_in += reader.rows_read
            info[name] = {"adapter": reader.adapter, "inputs": reader.inputs, "rows_read": reader.rows_read,
                          "rows_skipped": len(reader.skipped), "license": src.license or "unknown"}
        flush(sum(t.num_rows for t in pending))
    result = {"bounds": bounds, "sources": info, "rows_in": rows_in, "skipped": skipped}
    (folder / LOAD).write_text(json.dumps(result, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    return result


def _sequential(name, src, base_dir, part_rows, schema):
    from curate.sources.load import SourceReader

    reader = SourceReader(name, src, base_dir)

    def tables():
        buffer = []
        for row in reader:  # checks for an empty source itself: the caller's check then passes
            buffer.append(row)
            if len(buffer) == part_rows:
                yield pa.Table.from_pylist(buffer, schema=schema)
                buffer = []
        if buffer:
            yield pa.Table.from_pylist(buffer, schema=schema)

    return tables(), reader


def _in_chunks(src) -> bool:
    """Plain local JSON Lines files, read whole: chunks of them can be read anywhere."""
    from curate.sources.files import COMPRESSED
    from curate.sources.load import is_url

    if src.data is not None or not src.path or is_url(src.path) or src.limit:
        return False
    paths = src.path if isinstance(src.path, list) else [src.path]
    return all(not str(p).lower().endswith(COMPRESSED) and _kind_or_none(p, src) == "jsonl" for p in paths)


def _kind_or_none(path, src):
    from curate.errors import CurateError
    from curate.sources.files import file_kind

    try:
        return file_kind(str(path), src.file_type, "")
    except CurateError:
        return None


def _chunk_plan(name, src, base_dir):
    """A source of JSON Lines files, to be read in byte-range chunks by the executor: its reader and the
    chunks' tasks (the adapter decided from the first record, so every chunk converts alike)."""
    from curate.sources.files import expand_paths, jsonl_chunks
    from curate.sources.load import SourceReader, first_record

    reader = SourceReader(name, src, base_dir)
    files = expand_paths(src, reader.where)
    reader.add_files(files)
    adapter = src.format
    if adapter == "auto":
        probe = SourceReader(name, src, base_dir)
        for path in files:
            first = first_record(name, src, base_dir, path)
            if first is not None:
                probe.convert(*first)
                adapter = probe.adapter
                break
    reader.adapter = adapter
    return reader, [(src, reader.base_dir, path, start, end, line, adapter)
                    for path in files for start, end, line in jsonl_chunks(path)]


def _chunk_tables(reader, chunks, n: int):
    """The next `n` chunks' rows (as Arrow), collecting their skipped lines into `reader`."""
    for _ in range(n):
        table, skipped = next(chunks)
        reader.skipped += skipped
        yield table


def _read_chunk(task) -> tuple[pa.Table, list]:
    from curate.progress import quiet
    from curate.sources.load import read_chunk

    name, src, base_dir, path, start, end, line, adapter, schema = task
    with quiet():
        rows, skipped = read_chunk(name, src, base_dir, path, start, end, line, adapter)
    return pa.Table.from_pylist(rows, schema=schema), skipped


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
