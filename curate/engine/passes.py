"""Running steps over the row store: passes of row-local steps (part by part, in parallel) and global steps
(over the columns they read, for every alive row).

A step's result is stored as what it adds: a layer (transforms and scorers) or a drops file (filters and
selectors: `_row`, reason, duplicate_of, detail), with `notes.json`; in the step cache when it is on, in
the run's work folder when not.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.cache import StepCache
from curate.engine.store import ROW, Layer, RowStore, part_name, read_part, unify
from curate.engine.worker import PartTask, StepSpec, detail_json, layer_part, run_part
from curate.steps.base import Step, checked_drops, merge_counts, require_columns

LAYER = "layer.json"
DROPS = "drops.arrow"
NOTES = "notes.json"


@dataclass
class StepRun:
    """One step of the recipe in this run: how to build it, its cache key, and what it did."""

    spec: StepSpec
    step: Step
    key: str
    rows_in: int = 0
    rows_out: int = 0
    notes: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)  # reason -> rows dropped with it
    seconds: float = 0.0
    parts_cpu: float = 0.0  # CPU seconds summed over the part tasks (row-local work, or a global step's keys)
    global_cpu: float = 0.0  # CPU seconds of a global step's decision (on the driver)
    cached: bool = False
    folder: Path | None = None  # where its result lives
    report: object = None  # its StepReport, once done

    @property
    def index(self) -> int:
        return self.spec.index

    @property
    def makes_layer(self) -> bool:
        return self.step.role in ("transform", "score")


class Storage:
    """Where step results go: the step cache (verified, shared between runs) or, with the cache off, the
    run's private work folder."""

    def __init__(self, cache: StepCache | None, work: Path):
        self.cache, self.work = cache, work

    @contextmanager
    def lock(self, key: str):
        if self.cache is None:
            yield
        else:
            with self.cache.entry(key):
                yield

    def lookup(self, key: str, read):
        return None if self.cache is None else self.cache.load(key, read)

    def begin(self, key: str) -> Path:
        if self.cache is None:
            folder = self.work / key
            folder.mkdir(parents=True, exist_ok=True)
            return folder
        return self.cache.begin(key)

    def commit(self, key: str, folder: Path) -> Path:
        return folder if self.cache is None else self.cache.commit(key, folder)

    def abort(self, folder: Path) -> None:
        if self.cache is not None:
            self.cache.abort(folder)


# -- reading and writing one step's result ----------------------------------------------------------------


def read_result(folder: Path, run: StepRun, store: RowStore):
    """A stored result, checked against the rows it applies to (a foreign or stale entry must not apply)."""
    notes = json.loads((folder / NOTES).read_text(encoding="utf-8"))
    if notes.get("rows_in") != int(store.alive.sum()) or notes.get("parts") != store.n_parts:
        raise ValueError("it was made for other rows")
    if run.makes_layer:
        layer = Layer.from_json(folder, (folder / LAYER).read_text(encoding="utf-8"))
        for i in range(store.n_parts):
            if not (folder / part_name(i)).is_file():
                raise ValueError(f"{part_name(i)} is missing")
        return notes, layer, None
    return notes, None, read_part(folder / DROPS)


def apply_result(run: StepRun, store: RowStore, notes: dict, layer: Layer | None, drops: pa.Table | None) -> None:
    run.rows_in = int(store.alive.sum())
    if layer is not None:
        store.layers.append(layer)
    if drops is not None and drops.num_rows:
        store.drop(drops.column(ROW).to_numpy(), run.index)
    run.rows_out = int(store.alive.sum())
    run.notes = notes["notes"]
    run.reasons = notes["reasons"]


def write_notes(folder: Path, run: StepRun, store_rows: int, parts: int) -> None:
    data = {"rows_in": store_rows, "parts": parts, "notes": run.notes, "reasons": run.reasons}
    (folder / NOTES).write_text(json.dumps(data, ensure_ascii=False, sort_keys=True, default=str), encoding="utf-8")


def write_drops(folder: Path, drops: list[tuple[int, str, str | None, str | None]]) -> pa.Table:
    from curate.engine.store import write_part

    table = pa.table({
        ROW: pa.array([d[0] for d in drops], pa.int64()),
        "reason": pa.array([d[1] for d in drops], pa.string()),
        "duplicate_of": pa.array([d[2] for d in drops], pa.string()),
        "detail": pa.array([d[3] for d in drops], pa.string()),
    })
    write_part(folder / DROPS, table)
    return table


def _count_reasons(drops: list[tuple]) -> dict:
    out: dict[str, int] = {}
    for d in drops:
        out[d[1]] = out.get(d[1], 0) + 1
    return out


# -- a pass of row-local steps ------------------------------------------------------------------------------


def row_pass(store: RowStore, runs: list[StepRun], key_runs: list[StepRun], storage: Storage, executor,
             progress=None) -> dict[int, tuple[np.ndarray, dict]]:
    """Run `runs` (consecutive row-local steps, none cached) over every part, then compute the keys of
    `key_runs` (global steps) on the rows that are left. Stores each step's result; returns the keys by
    step index as (rows' _row, {key: array})."""
    upto = runs[0].index if runs else (key_runs[0].index if key_runs else None)
    folders = [storage.begin(run.key) for run in runs]
    try:
        tasks = (PartTask(store.spec(i, upto), [r.spec for r in runs],
                          [str(f) if r.makes_layer else None for r, f in zip(runs, folders)],
                          [k.spec for k in key_runs]) for i in range(store.n_parts))
        parallel = all(r.step.parallel() for r in runs + key_runs)
        schemas: list[list] = [[] for _ in runs]
        drops: list[list] = [[] for _ in runs]
        counts: list[dict] = [{} for _ in runs]
        keys: list[list] = [[] for _ in key_runs]
        rows_in = int(store.alive.sum())
        for run in runs:
            run.notes = {}
        labels = tuple(r.spec.label for r in runs + key_runs)
        for result in executor.map(run_part, tasks, parallel=parallel, n=store.n_parts, steps=labels):
            for k, (run, part) in enumerate(zip(runs, result.steps)):
                if part.schema is not None:
                    schemas[k].append(part.schema)
                drops[k] += part.drops
                merge_counts(counts[k], part.counts)
                run.notes.update(part.notes)
                run.seconds += part.seconds
                run.parts_cpu += part.cpu
            for k, found in enumerate(result.keys):
                keys[k].append(found)
                key_runs[k].parts_cpu += result.key_cpu[k]
            if progress is not None:
                progress(result.rows)
        for k, (run, folder) in enumerate(zip(runs, folders)):
            run.notes.update(counts[k])
            run.reasons = _count_reasons(drops[k])
            layer = None
            if run.makes_layer:
                layer = Layer(run.index, folder, unify(schemas[k]))
                (folder / LAYER).write_text(layer.to_json(), encoding="utf-8")
            table = write_drops(folder, drops[k]) if not run.makes_layer else None
            run.rows_in = rows_in
            write_notes(folder, run, rows_in, store.n_parts)
            final = storage.commit(run.key, folder)
            run.folder = final
            if layer is not None:
                layer.folder = final
                store.layers.append(layer)
            if table is not None and table.num_rows:
                store.drop(table.column(ROW).to_numpy(), run.index)
            run.rows_out = int(store.alive.sum())
            rows_in = run.rows_out
    except BaseException:
        for folder in folders:
            storage.abort(folder)
        raise
    return {run.index: _joined(found) for run, found in zip(key_runs, keys)}


def _joined(found: list[tuple[np.ndarray, dict]]) -> tuple[np.ndarray, dict]:
    rows = np.concatenate([f[0] for f in found]) if found else np.zeros(0, dtype=np.int64)
    names = found[0][1].keys() if found else []
    return rows, {k: np.concatenate([f[1][k] for f in found]) for k in names}


# -- a global step -----------------------------------------------------------------------------------------------


def columns_for(store: RowStore, run: StepRun) -> pa.Table:
    """`id` and the columns the step reads, for every alive row, in row order (with `_row`)."""
    step = run.step
    available = store.columns(upto=run.index)
    wanted = step.reads()
    require_columns(available, wanted, run.spec.where)
    cols = list(dict.fromkeys(["id", *wanted.values()]))
    parts = [store.view(i, upto=run.index, columns=cols) for i in range(store.n_parts)]
    return pa.concat_tables(parts) if parts else pa.table({ROW: pa.array([], pa.int64())})


def global_step(store: RowStore, run: StepRun, keys: tuple[np.ndarray, dict] | None, storage: Storage,
                executor=None) -> list[int] | None:
    """Run one global step over every alive row and store its result. Returns a selector's chosen rows
    (as positions among the alive rows), else None."""
    step = run.step
    t, cpu = time.perf_counter(), time.process_time()
    table = columns_for(store, run)
    rows = table.column(ROW).to_numpy()
    table = table.drop_columns([ROW])
    step.ctx.notes, step.ctx.counts = {}, {}
    chosen = None
    drops: list[tuple] = []
    layer_result = None
    if step.role == "select":
        chosen = sorted(set(step.select(table)))
        if chosen and not (0 <= chosen[0] and chosen[-1] < len(rows)):
            raise RuntimeError(f"{run.spec.label}: selected an index out of range")
        drop = step.not_selected()
        keep = np.zeros(len(rows), dtype=bool)
        keep[chosen] = True
        drops = [(int(r), drop.reason, None, None) for r in rows[~keep]]
    elif step.role == "filter":
        step.ctx.fetch = partial(fetch_at, store, run.index, rows)  # picklable: a cluster's tasks fetch too
        step.ctx.map = executor.map if executor is not None else None  # the workers wait for this decision
        aligned = None
        if keys is not None:
            key_rows, found = keys
            if np.array_equal(key_rows, rows):  # keys made for exactly these rows: no copy (MinHash's: 512 B/row)
                aligned = found
            else:
                at = np.searchsorted(key_rows, rows)
                aligned = {k: v[at] for k, v in found.items()}
        decisions = checked_drops(step, _decide(step, table, aligned if aligned is not None else {}, executor,
                                                run.spec.label), len(rows))
        drops = [(int(rows[i]), d.reason, d.duplicate_of, detail_json(d)) for i, d in sorted(decisions.items())]
    else:
        layer_result = step.apply(table)
    run.seconds, run.global_cpu = time.perf_counter() - t, time.process_time() - cpu
    run.rows_in = len(rows)
    run.notes = {**step.ctx.notes, **step.ctx.counts}
    run.reasons = _count_reasons(drops)
    folder = storage.begin(run.key)
    try:
        layer = None
        if layer_result is not None:
            layer = _global_layer(store, folder, run, rows, layer_result)
            (folder / LAYER).write_text(layer.to_json(), encoding="utf-8")
        else:
            write_drops(folder, drops)
        write_notes(folder, run, len(rows), store.n_parts)
        run.folder = storage.commit(run.key, folder)
    except BaseException:
        storage.abort(folder)
        raise
    if layer is not None:
        layer.folder = run.folder
        store.layers.append(layer)
    if drops:
        store.drop(np.asarray([d[0] for d in drops], dtype=np.int64), run.index)
    run.rows_out = int(store.alive.sum())
    return chosen


def _decide(step, table: pa.Table, keys: dict, executor, label: str) -> list:
    """A global filter's decisions: as a shuffle on an executor that runs them (Ray) when the step can say
    its decision as a group-by, else by the step itself, here."""
    if getattr(executor, "shuffles", False):
        grouping = step.grouping(table, keys)
        if grouping is not None:
            return grouping.finish(executor.run_grouping(grouping, label))
    return step.decide(table, keys)


def fetch_at(store: RowStore, upto: int, rows: np.ndarray, idx, columns: list[str]) -> pa.Table:
    """`columns` of the rows at positions `idx` of a global step's table (`rows`: their `_row`)."""
    return fetch_rows(store, upto, rows[np.asarray(idx, dtype=np.int64)], columns)


def fetch_rows(store: RowStore, upto: int, row_ids: np.ndarray, columns: list[str]) -> pa.Table:
    """`columns` of the rows `row_ids` (as the step before `upto` left them), in the order asked."""
    mask = np.zeros(store.n_rows, dtype=bool)
    mask[row_ids] = True
    parts = [store.view(i, upto=upto, mask=mask, columns=columns) for i in range(store.n_parts)
             if mask[store.part_rows(i)].any()]
    if not parts:
        return pa.table({c: pa.array([]) for c in columns})
    table = pa.concat_tables(parts)  # in _row order
    at = np.searchsorted(table.column(ROW).to_numpy(), row_ids)
    return table.take(pa.array(at)).select(columns)


def _global_layer(store: RowStore, folder: Path, run: StepRun, rows: np.ndarray, result) -> Layer:
    """A global transform's or scorer's columns, split into one layer part per base part."""
    from curate.steps.base import BatchResult

    schemas = []
    for i in range(store.n_parts):
        lo, hi = store.bounds[i], store.bounds[i + 1]
        a, b = np.searchsorted(rows, [lo, hi])
        part = BatchResult(columns={k: v.slice(a, b - a) for k, v in result.columns.items()},
                           changed=None if result.changed is None else result.changed[a:b])
        schemas.append(layer_part(folder, i, rows[a:b] - lo, hi - lo, part))
    return Layer(run.index, folder, unify(schemas))
