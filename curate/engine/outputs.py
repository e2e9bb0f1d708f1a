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
from dataclasses import dataclass
from json.encoder import encode_basestring
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from curate.engine.store import INTERNAL, ROW, PartSpec, RowStore, read_part
from curate.io import BATCH_ROWS, dumps, quiet_datasets, stable_schema, write_text_atomic
from curate.jsonl import encode_rows


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

    def write(self, table: pa.Table, jsonl: str | None = None) -> None:
        """Add rows; `jsonl` is their JSON Lines when a worker already made them (see render_part)."""
        if self.columns is None:
            self.columns = table.column_names
            self._open(table.schema)
        self.rows += table.num_rows
        self.sources.update(table.column("source").to_pylist())
        if self._jsonl is not None:
            self._jsonl.write(jsonl if jsonl is not None else json_lines(table))
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
        Dataset = quiet_datasets().Dataset

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


def json_lines(table: pa.Table) -> str:
    return "".join(line + "\n" for line in encode_rows(table))


@dataclass
class RenderTask:
    """Rows of one part as they are written: the output columns, templated, with their JSON Lines."""

    part: PartSpec
    schema: bytes  # the output schema before the template (serialised)
    template: str | None  # the TemplateSpec as JSON, or None
    base_dir: str
    jsonl: bool


def render_part(task: RenderTask) -> tuple[pa.Table, str | None]:
    schema = pa.ipc.read_schema(pa.py_buffer(task.schema))
    table = task.part.read().drop_columns([ROW])
    table = table.select(schema.names).cast(schema)
    if task.template is not None:
        from curate.templates.render import cached_templater

        table = cached_templater(task.template, task.base_dir).apply(table)
    return table, json_lines(table) if task.jsonl else None


def render_tasks(store: RowStore, mask: np.ndarray, upto: int | None, template: str | None, base_dir: str,
                 jsonl: bool) -> tuple[list[RenderTask], pa.Schema]:
    """One task per part holding rows of `mask`, and the schema the rows have there."""
    schema = output_schema(store, upto)
    data = schema.serialize().to_pybytes()
    tasks = [RenderTask(store.spec(i, upto, mask), data, template, base_dir, jsonl)
             for i in range(store.n_parts) if mask[store.part_rows(i)].any()]
    return tasks, schema


def rows_of(store: RowStore, mask: np.ndarray, upto: int | None = None) -> Iterator[pa.Table]:
    """The rows in `mask` part by part, internal columns removed, one schema throughout."""
    tasks, _ = render_tasks(store, mask, upto, None, ".", False)
    for task in tasks:
        yield render_part(task)[0]


@dataclass
class ChangeTask:
    """The kept rows of one part that transforms (clean, task) changed: before and after each of them."""

    before: list[PartSpec]  # per transform step: the part as its step saw it (kept rows, messages)
    after: list[PartSpec]  # ... and as it left it
    labels: list[str]


def change_part(task: ChangeTask) -> str:
    lines = []
    for label, before, after in zip(task.labels, task.before, task.after):
        old = before.read(["id", "source", "messages"]).to_pylist()
        new = after.read(["messages"]).column("messages").to_pylist()
        for row, messages in zip(old, new):
            turns = [{"index": i, "role": b["role"], "before": b["content"], "after": a["content"]}
                     for i, (b, a) in enumerate(zip(row["messages"], messages)) if b != a]
            if turns or len(row["messages"]) != len(messages):
                lines.append(dumps({"step": label, "id": row["id"], "source": row["source"], "turns": turns}) + "\n")
    return "".join(lines)


def change_tasks(store: RowStore, transforms: list[tuple[int, str]]) -> list[ChangeTask]:
    """One task per part with kept rows, covering every transform step `(index, label)` that wrote there."""
    tasks = []
    for i in range(store.n_parts):
        if not store.alive[store.part_rows(i)].any():
            continue
        steps = [(s, label) for s, label in transforms]
        tasks.append(ChangeTask([store.spec(i, upto=s) for s, _ in steps],
                                [store.spec(i, upto=s + 1) for s, _ in steps], [label for _, label in steps]))
    return tasks


@dataclass
class RejectTask:
    """The dropped rows of one part: each with the drop (step label, reason, duplicate_of, detail) and the
    columns it had when its step dropped it."""

    part: PartSpec
    dropped_at: np.ndarray  # per row of the part: the step that dropped it, -1 if alive
    drops: dict[int, pa.Table]  # step -> its drops whose rows fall in this part
    labels: dict[int, str]
    columns_at: dict[int, list[str]]
    out: str  # where its lines go: a file in the run's work folder, which the workers share


def reject_part(task: RejectTask) -> int:
    """Write the part's rejects.jsonl lines to `task.out`; returns how many. The worker writes them itself:
    handing ~2 KB a row back to the driver cost the driver a core during the write."""
    lines = reject_lines(task)
    # one write (not two a line); a retried task (Ray) writes its own temp file, then replaces
    write_text_atomic(Path(task.out), ["\n".join(lines)] if lines else [])
    return len(lines)


def reject_lines(task: RejectTask) -> list[str]:
    """The part's rejects.jsonl lines (without newlines), in load order, each step's rows encoded column by
    column."""
    table = task.part.read()
    rows = table.column(ROW).to_numpy()
    steps = task.dropped_at[rows - task.part.start]
    lines = np.empty(len(rows), dtype=object)
    for s, drops in task.drops.items():
        at = np.flatnonzero(steps == s)
        if not np.array_equal(drops.column(ROW).to_numpy(), rows[at]):  # both hold the rows in load order
            raise RuntimeError(f"{task.labels[s]}: its drops are not the rows it dropped in part {task.part.index}")
        rows_json = encode_rows(table.take(at).select(task.columns_at[s]))
        lines[at] = [head + row + "}" for head, row in zip(_reject_heads(task.labels[s], drops), rows_json)]
    return lines.tolist()


def _reject_heads(label: str, drops: pa.Table) -> list[str]:
    """Each entry's text up to its row:
    `{"step": ..., "reason": ..., ["duplicate_of": ...,] ["detail": ...,] "row": `."""
    start = '{"step": ' + encode_basestring(label) + ', "reason": '
    heads = []
    columns = (drops.column(c).to_pylist() for c in ("reason", "duplicate_of", "detail"))
    for reason, duplicate_of, detail in zip(*columns):
        head = start + encode_basestring(reason)
        if duplicate_of is not None:
            head += ', "duplicate_of": ' + encode_basestring(duplicate_of)
        if detail is not None:  # stored as dumps writes it, keys sorted, but with NaN / Infinity (dumps: null)
            head += ', "detail": ' + (detail if "NaN" not in detail and "Infinity" not in detail
                                      else dumps(json.loads(detail)))
        heads.append(head + ', "row": ')
    return heads


def reject_tasks(store: RowStore, labels: dict[int, str], folders: dict[int, Path],
                 parts: Path) -> Iterator[RejectTask]:
    from curate.engine.passes import DROPS

    drops = {s: read_part(folder / DROPS) for s, folder in folders.items()}
    rows = {s: t.column(ROW).to_numpy() for s, t in drops.items()}
    columns_at = {s: store.columns(upto=s) for s in folders}
    dead = store.dropped_at >= 0
    for i in range(store.n_parts):
        part = store.part_rows(i)
        if not dead[part].any():
            continue
        here = {}
        for s, r in rows.items():
            a, b = np.searchsorted(r, [part.start, part.stop])
            if b > a:
                here[s] = drops[s].slice(a, b - a)
        yield RejectTask(store.spec(i, mask=dead), store.dropped_at[part].copy(), here,
                         {s: labels[s] for s in here}, {s: columns_at[s] for s in here},
                         str(parts / f"{i:06d}.jsonl"))


def write_rejects(path: Path, store: RowStore, labels: dict[int, str], folders: dict[int, Path],
                  first: Iterable[dict], last: Iterable[dict], executor, work: Path) -> int:
    """rejects.jsonl: `first` (rows the loader skipped), each dropped row in load order as it was when its
    step dropped it (with that step's reason), then `last` (the mix's). The workers write each part's lines
    to a file in `work`, which are appended here in part order. Returns the number of entries."""
    count = 0
    parts = Path(work) / "rejects"
    parts.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for entry in first:
            f.write((dumps(entry) + "\n").encode("utf-8"))
            count += 1
        tasks = list(reject_tasks(store, labels, folders, parts))
        for task, lines in zip(tasks, executor.map(reject_part, tasks, n=len(tasks))):
            with open(task.out, "rb") as part:
                shutil.copyfileobj(part, f, 1 << 20)
            os.unlink(task.out)
            count += lines
        for entry in last:
            f.write((dumps(entry) + "\n").encode("utf-8"))
            count += 1
    return count
