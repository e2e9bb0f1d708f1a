"""Rows of an Arrow table as JSON Lines, made a column at a time.

Each line is exactly `io.dumps(io.row_for_json(row))` of the row (tests/test_jsonl.py compares the two on odd
tables): strings through the json module's own C string encoder, numbers by `repr` (NaN and infinities as
null), lists and structs put together from their children's texts, `meta` (a JSON string) as an object. It
makes no Python dict per row: 1.4-2x faster on rejects (bench/bench_jsonl.py; bench/README.md, "Stop 21").
A type without a rule here (timestamps, binary, maps, ...) is written value by value with `io.dumps`, as a
whole row would write it.
"""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring

import numpy as np
import pyarrow as pa
import pyarrow.types as pt

from curate.io import dumps

NULL = "null"


def encode_rows(table: pa.Table | pa.RecordBatch) -> list[str]:
    """One JSON object per row (no newline), keys in column order."""
    names = table.column_names
    columns = []
    for name in names:
        column = _one_array(table.column(name))
        if name == "meta" and (pt.is_string(column.type) or pt.is_large_string(column.type)):
            columns.append(_meta_objects(column))
        else:
            columns.append(encode_column(column))
    return _objects(names, columns, table.num_rows)


def _meta_objects(column: pa.Array) -> list[str]:
    """`meta` (JSON text) as the object dumps writes; each distinct text decoded once (most rows share a few)."""
    done = {None: NULL}
    out = []
    for v in column.to_pylist():
        text = done.get(v)
        if text is None:
            text = done[v] = dumps(json.loads(v))
        out.append(text)
    return out


def encode_column(array: pa.Array | pa.ChunkedArray) -> list[str]:
    """The JSON text of each value of `array`."""
    array = _one_array(array)
    t = array.type
    if pt.is_string(t) or pt.is_large_string(t):
        return [NULL if v is None else encode_basestring(v) for v in array.to_pylist()]
    if pt.is_integer(t):
        return [NULL if v is None else int.__repr__(v) for v in array.to_pylist()]
    if pt.is_float32(t) or pt.is_float64(t):
        return [NULL if v is None or not math.isfinite(v) else float.__repr__(v) for v in array.to_pylist()]
    if pt.is_boolean(t):
        return [NULL if v is None else ("true" if v else "false") for v in array.to_pylist()]
    if pt.is_null(t):
        return [NULL] * len(array)
    if pt.is_list(t) or pt.is_large_list(t):
        return _lists(array)
    if pt.is_struct(t) and len({f.name for f in t}) == t.num_fields:
        fields = array.flatten()
        texts = _objects([f.name for f in t], [encode_column(f) for f in fields], len(array))
        return _with_nulls(texts, array)
    return [dumps(v) for v in array.to_pylist()]  # the whole row's way, value by value


def _lists(array: pa.Array) -> list[str]:
    offsets = array.offsets.to_numpy()
    start, end = int(offsets[0]), int(offsets[-1])
    items = encode_column(array.values.slice(start, end - start))
    bounds = (offsets - start).tolist()
    texts = ["[" + ", ".join(items[a:b]) + "]" for a, b in zip(bounds, bounds[1:])]
    return _with_nulls(texts, array)


def _objects(names: list[str], columns: list[list[str]], n: int) -> list[str]:
    if not names:
        return ["{}"] * n
    # one format string per table: each key already encoded, each value a %s
    template = "{" + ", ".join(encode_basestring(name).replace("%", "%%") + ": %s" for name in names) + "}"
    return [template % values for values in zip(*columns)]


def _with_nulls(texts: list[str], array: pa.Array) -> list[str]:
    if array.null_count:
        for i in np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False)).tolist():
            texts[i] = NULL
    return texts


def _one_array(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        if array.num_chunks == 1:
            return array.chunk(0)
        return pa.concat_arrays(array.chunks) if array.num_chunks else pa.array([], array.type)
    return array

