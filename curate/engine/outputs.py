"""Writing a run's files from batches of rows: data / baseline in jsonl, parquet and Arrow, and the rejects.

Everything streams: rows arrive part by part and leave as lines, fixed-size parquet row groups and Arrow
record batches, so memory does not grow with the number of rows. The layout of every file depends only on
the rows (see curate.io.BATCH_ROWS), never on the parts they came in.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from curate.engine.store import INTERNAL, ROW, RowStore, read_part
from curate.io import BATCH_ROWS, dumps, row_for_json, stable_schema


class DataWriter:
    """<stem>.jsonl / <stem>.parquet / <stem>/ (a datasets.save_to_disk folder) from batches of one schema."""

    def __init__(self, directory: Path, stem: str, formats: list[str], fingerprint: str):
        self.directory, self.stem, self.formats, self.fingerprint = Path(directory), stem, formats, fingerprint
        self.rows = 0
        self.sources: Counter = Counter()
        self.columns: list[str] | None = None
        self._jsonl = open(self.directory / f".{stem}.jsonl.tmp", "w", encoding="utf-8", newline="\n") \
            if "jsonl" in formats else None
        self._parquet = None
        self._arrow = None
        self._pending: list[pa.Table] = []  # rows waiting for a full parquet row group / Arrow batch
        self._pending_rows = 0

    def write(self, table: pa.Table) -> None:
        if self.columns is None:
            self.columns = table.column_names
            self._open(table.schema)
        self.rows += table.num_rows
        self.sources.update(table.column("source").to_pylist())
        if self._jsonl is not None:
            for row in table.to_pylist():
                self._jsonl.write(dumps(row_for_json(row)))
                self._jsonl.write("\n")
        if self._parquet is not None or self._arrow is not None:
            self._pending.append(table)
            self._pending_rows += table.num_rows
            while self._pending_rows >= BATCH_ROWS:
                self._emit(BATCH_ROWS)

    def _open(self, schema: pa.Schema) -> None:
        import pyarrow.parquet as pq

        schema = stable_schema(schema.empty_table()).schema
        if "parquet" in self.formats:
            self._parquet = pq.ParquetWriter(str(self.directory / f".{self.stem}.parquet.tmp"), schema)
        if "arrow" in self.formats:
            self._arrow_sink = pa.OSFile(str(self.directory / f".{self.stem}.arrow.tmp"), "wb")
            self._arrow = pa.ipc.new_stream(self._arrow_sink, schema)
        self._schema = schema

    def _emit(self, n: int) -> None:
        table = pa.concat_tables(self._pending).combine_chunks()
        head, rest = table.slice(0, n), table.slice(n)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows
        head = head.replace_schema_metadata(self._schema.metadata).combine_chunks()
        if self._parquet is not None:
            self._parquet.write_table(head, row_group_size=BATCH_ROWS)
        if self._arrow is not None:
            self._arrow.write_table(head, max_chunksize=BATCH_ROWS)

    def close(self, empty_schema: pa.Schema | None = None) -> list[str]:
        """Finish every file and move it into place; returns the names written."""
        if self.columns is None:  # no rows at all: files with the columns the rows would have had
            self.columns = (empty_schema or pa.schema([])).names
            self._open(empty_schema or pa.schema([]))
        if self._pending_rows:
            self._emit(self._pending_rows)
        written = []
        d, stem = self.directory, self.stem
        if self._jsonl is not None:
            self._jsonl.close()
            os.replace(d / f".{stem}.jsonl.tmp", d / f"{stem}.jsonl")
            written.append(f"{stem}.jsonl")
        if self._parquet is not None:
            self._parquet.close()
            os.replace(d / f".{stem}.parquet.tmp", d / f"{stem}.parquet")
            written.append(f"{stem}.parquet")
        if self._arrow is not None:
            self._arrow.close()
            self._arrow_sink.close()
            self._save_to_disk(d / f".{stem}.arrow.tmp", d / stem)
            written.append(f"{stem}/")
        return written

    def _save_to_disk(self, stream: Path, target: Path) -> None:
        from datasets import Dataset

        tmp = Path(tempfile.mkdtemp(dir=self.directory, prefix=f".{self.stem}.", suffix=".tmp"))
        try:
            ds = Dataset.from_file(str(stream))  # memory-mapped
            ds = Dataset(ds.data, info=ds.info.copy(), fingerprint=self.fingerprint)  # a fixed state.json
            # an empty table still gets one (empty) shard: with none, load_from_disk cannot read the folder
            ds.save_to_disk(str(tmp), num_shards=1 if len(ds) == 0 else None)
            del ds
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            stream.unlink(missing_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def output_schema(store: RowStore, upto: int | None = None) -> pa.Schema:
    """The columns rows have after the steps before `upto`, each with its final type."""
    from curate.engine.store import BASE_SCHEMA

    types = {f.name: f.type for f in BASE_SCHEMA if f.name not in INTERNAL}
    for layer in store.layers:
        if upto is None or layer.step < upto:
            for f in layer.schema:
                types[f.name] = f.type
    return pa.schema([(name, types[name]) for name in store.columns(upto)])


def rows_of(store: RowStore, mask: np.ndarray, upto: int | None = None) -> Iterator[pa.Table]:
    """The rows in `mask` part by part, internal columns removed, one schema throughout."""
    schema = output_schema(store, upto)
    for i in range(store.n_parts):
        if not mask[store.part_rows(i)].any():
            continue
        table = store.view(i, upto=upto, mask=mask).drop_columns([ROW])
        yield table.select(schema.names).cast(schema)


def write_rejects(path: Path, store: RowStore, labels: dict[int, str], folders: dict[int, Path],
                  first: Iterable[dict], last: Iterable[dict]) -> int:
    """rejects.jsonl: `first` (rows the loader skipped), each dropped row in load order as it was when its
    step dropped it (with that step's reason), then `last` (the mix's). Returns the number of entries."""
    from curate.engine.passes import DROPS

    drops = {s: read_part(folder / DROPS) for s, folder in folders.items()}
    drop_rows = {s: t.column(ROW).to_numpy() for s, t in drops.items()}
    columns_at = {s: store.columns(upto=s) for s in folders}
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for entry in first:
            f.write(dumps(entry) + "\n")
            count += 1
        dead = store.dropped_at >= 0
        for i in range(store.n_parts):
            part = store.part_rows(i)
            if not dead[part].any():
                continue
            lo, hi = part.start, part.stop
            infos: dict[int, dict] = {}
            for s, rows in drop_rows.items():
                a, b = np.searchsorted(rows, [lo, hi])
                if b > a:
                    infos.update(zip(rows[a:b].tolist(), drops[s].slice(a, b - a).to_pylist()))
            for row in store.view(i, mask=dead).to_pylist():
                s = int(store.dropped_at[row[ROW]])
                info = infos[row[ROW]]
                entry = {"step": labels[s], "reason": info["reason"]}
                if info["duplicate_of"] is not None:
                    entry["duplicate_of"] = info["duplicate_of"]
                if info["detail"] is not None:
                    entry["detail"] = json.loads(info["detail"])
                entry["row"] = row_for_json({c: row[c] for c in columns_at[s]})
                f.write(dumps(entry) + "\n")
                count += 1
        for entry in last:
            f.write(dumps(entry) + "\n")
            count += 1
    return count
