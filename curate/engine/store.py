"""The rows of a run on disk: the loaded rows in parts, what each step added as layers, and which rows are
still alive.

- The **base** is the loaded rows (`_row`, id, source, messages, meta), in parts of at most `executor.part_rows` rows,
  one Arrow IPC file each. `_row` is the row's position in load order, the key everything else refers to.
- A **layer** is what one transform or scorer wrote: for every base part, a file with the same rows, a
  `_set` flag (the rows this step wrote) and its columns (null where not set). Reading a part overlays the
  layers in step order: a set value replaces the one before. A layer holds what the step adds, never a
  copy of the rest; the step cache stores exactly these files.
- **alive** marks the rows no filter or selector has dropped yet; `dropped_at` says which step dropped each
  other row.

Parts are read memory-mapped, one at a time: memory depends on the part size and the key columns a global
step asks for, not on the number of rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROW = "_row"
SET = "_set"
INTERNAL = (ROW, SET)
MESSAGES_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
BASE_SCHEMA = pa.schema([(ROW, pa.int64()), ("id", pa.string()), ("source", pa.string()),
                         ("messages", MESSAGES_TYPE), ("meta", pa.string())])


def part_name(i: int) -> str:
    return f"part-{i:05d}.arrow"


def write_part(path: Path, table: pa.Table) -> None:
    """One part as an Arrow IPC file (zstd-compressed buffers), written in one record batch."""
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    table = table.combine_chunks()
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=max(table.num_rows, 1))


def read_part(path: Path, columns: list[str] | None = None) -> pa.Table:
    """The part's table, or only `columns` of it (those it has, in its own order; the others' buffers are not
    even decompressed: a global step that reads `id` does not pay for the messages)."""
    with pa.memory_map(str(path), "r") as source:
        if columns is None:
            return pa.ipc.open_file(source).read_all()
        names = pa.ipc.open_file(source).schema.names
        fields = [i for i, name in enumerate(names) if name in columns]
        return pa.ipc.open_file(source, options=pa.ipc.IpcReadOptions(included_fields=fields)).read_all()


@dataclass
class Layer:
    """What one step wrote: the folder of its parts, its columns and their unified types."""

    step: int  # the step's index in the recipe
    folder: Path
    schema: pa.Schema  # the step's columns (without _set), one type each over all parts

    @property
    def columns(self) -> list[str]:
        return self.schema.names

    def to_json(self) -> str:
        return json.dumps({"step": self.step, "schema": self.schema.serialize().to_pybytes().hex()})

    @classmethod
    def from_json(cls, folder: Path, text: str) -> "Layer":
        data = json.loads(text)
        return cls(data["step"], Path(folder), pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(data["schema"]))))


def unify(schemas: list[pa.Schema]) -> pa.Schema:
    """One type per column over all parts (int and float give float, null gives the other type)."""
    return pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])


@dataclass
class RowStore:
    """The base parts, the layers so far and the alive mask; `view(i)` is part i as the steps see it."""

    base: Path  # folder of the base parts
    bounds: list[int]  # part i holds the rows bounds[i] .. bounds[i + 1] - 1
    layers: list[Layer] = field(default_factory=list)
    alive: np.ndarray = None  # bool per row
    dropped_at: np.ndarray = None  # step index that dropped the row, -1 while alive

    def __post_init__(self):
        n = self.bounds[-1]
        if self.alive is None:
            self.alive = np.ones(n, dtype=bool)
        if self.dropped_at is None:
            self.dropped_at = np.full(n, -1, dtype=np.int32)

    @property
    def n_rows(self) -> int:
        return self.bounds[-1]

    @property
    def n_parts(self) -> int:
        return len(self.bounds) - 1

    def part_rows(self, i: int) -> slice:
        return slice(self.bounds[i], self.bounds[i + 1])

    def columns(self, upto: int | None = None) -> list[str]:
        """The columns the rows have after the layers of steps before `upto` (all layers if None)."""
        names = [c for c in BASE_SCHEMA.names if c != ROW]
        for layer in self.layers:
            if upto is None or layer.step < upto:
                names += [c for c in layer.columns if c not in names]
        return names

    def spec(self, i: int, upto: int | None = None, mask: np.ndarray | None = None) -> "PartSpec":
        """What a worker needs to read part i: file paths, layer types, and the rows wanted."""
        rows = self.alive[self.part_rows(i)] if mask is None else mask[self.part_rows(i)]
        layers = [(str(layer.folder / part_name(i)), layer.schema.serialize().to_pybytes())
                  for layer in self.layers if upto is None or layer.step < upto]
        return PartSpec(i, self.bounds[i], str(self.base / part_name(i)), layers, np.asarray(rows, dtype=bool))

    def view(self, i: int, upto: int | None = None, mask: np.ndarray | None = None,
             columns: list[str] | None = None) -> pa.Table:
        return self.spec(i, upto, mask).read(columns)

    def drop(self, rows: np.ndarray, step: int) -> None:
        self.alive[rows] = False
        self.dropped_at[rows] = step


@dataclass
class PartSpec:
    """Part `index` as of some step: its base file, its layers' files and types, and a row mask. Small and
    picklable: a worker process reads the part itself."""

    index: int
    start: int  # the _row of the part's first row (a part's rows are consecutive)
    base: str
    layers: list[tuple[str, bytes]]  # (part file, serialised unified schema) per layer, in step order
    rows: np.ndarray  # bool per row of the part: which rows to return

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """The wanted rows with every column (or `columns`, plus `_row`), layers overlaid in order."""
        table = read_part(Path(self.base), None if columns is None else [ROW, *columns])
        for path, schema_bytes in self.layers:
            schema = pa.ipc.read_schema(pa.py_buffer(schema_bytes))
            if columns is not None and not any(c in columns for c in schema.names):
                continue
            layer = read_part(Path(path), None if columns is None else [SET, *columns])
            is_set = layer.column(SET)
            for name in schema.names:
                if columns is not None and name not in columns:
                    continue
                want = schema.field(name).type
                new = (layer.column(name).cast(want) if name in layer.column_names  # a part with no rows set
                       else pa.nulls(layer.num_rows, want))
                if name in table.column_names:
                    old = table.column(name)
                    if old.type != new.type:
                        old = old.cast(new.type)
                    table = table.set_column(table.column_names.index(name), name, pc.if_else(is_set, new, old))
                else:
                    table = table.append_column(name, new)
        if columns is not None:
            table = table.select([ROW] + [c for c in columns if c in table.column_names and c != ROW])
        if not self.rows.all():
            table = table.filter(pa.array(self.rows))
        return table
