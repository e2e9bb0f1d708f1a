"""What runs on one part of the rows, in a worker process or in the main one: a chain of row-local steps
(each writes its layer part, or returns its drops), then the keys of the global steps that follow.

Everything here is small and picklable: a task names files and steps; a worker builds each step once and
reads its part itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.engine.store import ROW, SET, PartSpec, part_name, write_part
from curate.faults import fault_point
from curate.io import json_encoder
from curate.ledger import Drop
from curate.steps.base import Step, StepContext, filtered_values, shared_values


@dataclass(frozen=True)
class StepSpec:
    """A step as data: rebuilt in any process from its registered name and validated params."""

    index: int
    name: str
    params_json: str
    label: str
    where: str
    seed: int
    recipe_dir: str
    key: str = ""  # its cache key: what it reads (files, code) is part of it, so an edited file makes a new step
    source_kinds: tuple = ()  # (source name, kind) of the recipe's sources

    def build(self) -> Step:
        step = _BUILT.get(self)
        if step is None:
            from curate.steps.registry import get_step

            cls = get_step(self.name)
            ctx = StepContext(self.label, self.where, self.seed, self.recipe_dir, source_kinds=dict(self.source_kinds))
            step = _BUILT[self] = cls(cls.Params.model_validate_json(self.params_json), ctx)
        return step


_BUILT: dict[StepSpec, Step] = {}  # per process: a step is built once, not once per part


@dataclass
class PartTask:
    part: PartSpec
    steps: list[StepSpec]  # row-local steps, in order
    layer_dirs: list[str | None]  # per step: where its layer part goes (None: a filter, no layer)
    key_steps: list[StepSpec] = field(default_factory=list)  # global steps whose keys to compute after


@dataclass
class StepPart:
    """What one step made of one part."""

    schema: pa.Schema | None = None  # a layer's columns as written in this part
    drops: list[tuple[int, str, str | None, str | None]] = field(default_factory=list)  # (row, reason, dup, detail)
    notes: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    rows_in: int = 0
    seconds: float = 0.0
    cpu: float = 0.0  # CPU seconds of this process: what the step costs on a loaded machine too


@dataclass
class PartResult:
    index: int
    rows: int  # rows read (alive at the start of the pass)
    steps: list[StepPart]
    keys: list[tuple[np.ndarray, dict]]  # per key step: (the rows' _row, {key: array})
    key_cpu: list[float] = field(default_factory=list)  # per key step: CPU seconds computing its keys


def run_part(task: PartTask) -> PartResult:
    from curate.progress import quiet

    table = task.part.read()
    rows_read = table.num_rows
    n_part = len(task.part.rows)
    first = task.part.start
    results = []
    # one Python copy of a column for all the steps of the chain that read it
    with quiet(), shared_values():  # (the engine shows one bar per pass; a step's own bars would flicker per part)
        for spec, layer_dir in zip(task.steps, task.layer_dirs):
            step = spec.build()
            step.ctx.notes, step.ctx.counts = {}, {}
            t, cpu = time.perf_counter(), time.process_time()
            rows = table.column(ROW).to_numpy()
            result = step.apply(table.drop_columns([ROW]))
            out = StepPart(rows_in=table.num_rows)
            if result.drops:
                keep = np.ones(table.num_rows, dtype=bool)
                for i, d in sorted(result.drops.items()):
                    keep[i] = False
                    out.drops.append((int(rows[i]), d.reason, d.duplicate_of, detail_json(d)))
                kept, table = table, table.filter(pa.array(keep))
                filtered_values(kept, table, keep)
            if result.columns:
                out.schema = _write_layer(Path(layer_dir), task.part.index, rows - first, n_part, result)
                table = _with_columns(table, result)
            fault_point("step")
            out.seconds, out.cpu = time.perf_counter() - t, time.process_time() - cpu
            out.notes, out.counts = dict(step.ctx.notes), dict(step.ctx.counts)
            results.append(out)
        keys, key_cpu = [], []
        for spec in task.key_steps:
            cpu = time.process_time()
            step = spec.build()
            found = step.keys(table.drop_columns([ROW])) or {}
            keys.append((table.column(ROW).to_numpy(), {k: np.asarray(v) for k, v in found.items()}))
            key_cpu.append(time.process_time() - cpu)
    return PartResult(task.part.index, rows_read, results, keys, key_cpu)


_encode_detail = json_encoder(sort_keys=True, default=str)  # json.dumps with these, 3x faster


def detail_json(d: Drop) -> str | None:
    """A drop's detail as the drops tables store it (JSON, keys sorted), or None."""
    return _encode_detail(d.detail) if d.detail else None


def _write_layer(folder: Path, index: int, local: np.ndarray, n_part: int, result) -> pa.Schema:
    """The step's columns for every row of the part: values where it wrote, null elsewhere, and `_set`."""
    changed = result.changed if result.changed is not None else np.ones(len(local), dtype=bool)
    where = np.full(n_part, -1, dtype=np.int64)
    where[local[changed]] = np.flatnonzero(changed)
    take = pa.array(where, mask=where < 0)
    columns = {SET: pa.array(where >= 0)}
    for name, arr in result.columns.items():
        columns[name] = arr.take(take)
    table = pa.table(columns)
    folder.mkdir(parents=True, exist_ok=True)
    write_part(folder / part_name(index), table)
    return table.schema.remove(0)


def layer_part(folder: Path, index: int, local: np.ndarray, n_part: int, result) -> pa.Schema:
    """A global step's layer part (task, score.rank): the same file a row-local step writes."""
    return _write_layer(folder, index, local, n_part, result)


def _with_columns(table: pa.Table, result) -> pa.Table:
    for name, arr in result.columns.items():
        if name in table.column_names:
            old = table.column(name)
            if old.type != arr.type:
                arr = arr.cast(old.type) if pa.types.is_nested(old.type) else arr
            table = table.set_column(table.column_names.index(name), name, arr)
        else:
            table = table.append_column(name, arr)
    return table
