"""The step contracts: each role carries itself out on Arrow tables.

Four roles that never mix:
- Transform (`clean`, `task`): rewrites columns of the rows it gets (usually `messages`); never adds or drops
  rows.
- Scorer: adds columns; never drops a row. A row it cannot score gets NaN (or None) and, in
  `<column>_why`, the reason.
- Filter (filters and deduplicators): keeps or drops each row; every drop carries a reason.
- Selector: picks a budgeted, seeded subset; the rows it leaves out go to the ledger as "not selected".

And two scopes:
- row-local (`scope = "row"`, the default for transforms, scorers and filters): a function of one batch of
  rows (`pa.Table` in; new columns, or one decision per row, out). The engine runs it batch by batch, in
  parallel when `parallel()` allows (a step that loads a model says no and runs in the main process).
- global (`scope = "global"`: deduplicators, selectors, `score.rank`, `task`): it needs every row at once. It
  declares the columns it reads (`reads()`) and gets only those, for all rows (plus `id`). A global filter
  may also compute per-row keys (`keys(batch)`: hashes, signatures, lengths) row-locally, so that it never
  holds the rows' text: the engine computes them batch by batch and passes them to `decide(table, keys)`.

The base classes do the bookkeeping every step of a role shares: checking what a step returns, the NaN +
`_why` rule and its counts, turning decisions into keep-masks and drops, the budget walk. `apply(batch)` is
what the engine calls for a row-local step; it returns a `BatchResult`.

A step declares `name` (its recipe name), `role`, `Params` (a pydantic model; unknown keys are errors),
the columns it reads (`reads()`, checked by `curate validate` against what earlier steps add) and adds
(`adds()`). It is built as `Step(params, ctx)`. Facts a step reports go in `ctx.notes`; counts that add up
over batches go through `ctx.count(name, n)` (the engine sums them over batches in order).
"""

from __future__ import annotations

import math
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Callable, ClassVar, Iterable, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import AfterValidator, model_validator

from curate.errors import CurateError, did_you_mean
from curate.ledger import Drop
from curate.steps.grouping import Grouping
from curate.strict import StrictModel


def _valid_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as e:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {e}") from None
    return pattern


# A regex given in a recipe: checked when the recipe is validated, so the error names the list index.
Regex = Annotated[str, AfterValidator(_valid_regex)]


class StepParams(StrictModel):
    """Base for every step's parameters: unknown keys are errors, values are checked."""


@dataclass
class StepContext:
    """What a step may know about the run it is in."""

    label: str  # the step's name in the ledger and the manifest, e.g. "dedup.minhash" or "filter#2"
    where: str  # the recipe location of its parameters, for error messages, e.g. "steps[3].dedup.minhash"
    seed: int  # the recipe seed, already mixed with the step position
    recipe_dir: str = "."  # for parameters that name files relative to the recipe
    notes: dict = field(default_factory=dict)  # facts the step reports into the manifest (e.g. coverage)
    source_kinds: dict = field(default_factory=dict)  # source name -> its `kind` (text, code)
    # a global step's access to columns of some of its rows (positions in its table), set by the engine
    fetch: Callable[[np.ndarray, list[str]], pa.Table] | None = field(default=None, repr=False)
    # ... and a map over picklable tasks on the engine's workers (results in order; None: in this process)
    map: Callable | None = field(default=None, repr=False)
    counts: dict = field(default_factory=dict)  # counts summed over batches (rows changed, unscored rows)

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def count(self, name: str, n: int = 1, group: str | None = None) -> None:
        """Add `n` to a count reported in the manifest (inside the dict `group` when given). The count
        shows in `notes` too (for one call); the engine sums `counts` over batches and reports the sums."""
        for into in (self.counts, self.notes):
            d = into.setdefault(group, {}) if group else into
            d[name] = d.get(name, 0) + int(n)


def merge_counts(into: dict, more: dict) -> dict:
    """Add the (nested) counts of `more` to `into`."""
    for k, v in more.items():
        if isinstance(v, dict):
            merge_counts(into.setdefault(k, {}), v)
        else:
            into[k] = into.get(k, 0) + v
    return into


@dataclass
class BatchResult:
    """What a step made of one batch: columns to set (transform, score) or decisions (filter)."""

    columns: dict[str, pa.Array] = field(default_factory=dict)  # one value per row of the batch
    changed: np.ndarray | None = None  # transforms: the rows whose columns changed (None: all)
    drops: dict[int, Drop] = field(default_factory=dict)  # filters: row index in the batch -> why


# -- reading a batch ----------------------------------------------------------------------------------


def as_table(rows) -> pa.Table:
    """A `pa.Table` of `rows`: a table, a record batch, or a `datasets.Dataset` (read into Arrow)."""
    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, pa.RecordBatch):
        return pa.Table.from_batches([rows])
    if hasattr(rows, "with_format"):  # a datasets.Dataset
        return rows.with_format("arrow")[:]
    raise TypeError(f"expected an Arrow table, got {type(rows).__name__}")


def values(table: pa.Table, column: str) -> list:
    """A column as Python values: read them, never change them (inside `shared_values()`, the next step that
    reads the same column of the same rows gets the same list)."""
    col = table.column(column)
    shared = getattr(_local, "shared", None)
    if shared is None:
        return col.to_pylist()
    key = _data_key(col)
    if key not in shared:
        shared[key] = (col, col.to_pylist())  # the column held: its buffers' addresses stay its own
    return shared[key][1]


@contextmanager
def shared_values():
    """Within it, each column is turned into Python once (~6 µs a row for conversations, once per step
    before): what the engine's chain of steps over one part uses. The lists go at the end."""
    _local.shared = {}
    try:
        yield
    finally:
        _local.shared = None


def filtered_values(before: pa.Table, after: pa.Table, keep: np.ndarray) -> None:
    """`after` is `before` filtered by `keep`: inside `shared_values()`, its columns' Python values are the
    kept ones of `before`'s, where those were converted (no second conversion after a filter)."""
    shared = getattr(_local, "shared", None)
    if shared is None:
        return
    for name in after.column_names:
        hit = shared.get(_data_key(before.column(name)))
        if hit is not None:
            col = after.column(name)
            shared[_data_key(col)] = (col, [v for v, k in zip(hit[1], keep.tolist()) if k])


def _data_key(col: pa.ChunkedArray) -> tuple:
    """What identifies a column's values while it is alive: its type and, per chunk, where its buffers lie, with
    each level's offset and length (Arrow data never changes in place)."""
    def array_key(arr: pa.Array) -> tuple:
        children = ()
        if isinstance(arr, (pa.ListArray, pa.LargeListArray)):
            children = (array_key(arr.values),)
        elif isinstance(arr, pa.StructArray):
            children = tuple(array_key(arr.field(i)) for i in range(arr.type.num_fields))
        return (arr.offset, len(arr), tuple(b.address if b is not None else 0 for b in arr.buffers()), children)

    return (str(col.type), tuple(array_key(chunk) for chunk in col.chunks))


_local = threading.local()  # .shared: _data_key -> (the column, its Python values), inside shared_values()


def numbers(table: pa.Table, column: str, where: str, what: str = "rank rows") -> np.ndarray:
    """A numeric column as float64, None as NaN; a non-numeric column is the user's error."""
    col = table.column(column)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)
            or pa.types.is_null(col.type)):
        raise CurateError(f"column {column!r} is not numeric (it holds {col.type}), so it cannot {what}", where)
    return np.asarray(col.cast(pa.float64()).fill_null(math.nan).to_numpy(zero_copy_only=False), dtype=np.float64)


def missing_columns(available: Iterable[str], wanted: dict[str, str], where: str) -> list[tuple[str, str, str]]:
    """(location, column, did-you-mean hint) of each `wanted` column (param name -> column) not in
    `available`; the location is `<where>.<param>` (`where` for the param "")."""
    names = list(available)
    return [(f"{where}.{param}" if param else where, column, did_you_mean(column, names))
            for param, column in wanted.items() if column not in names]


def require_columns(available: Iterable[str], wanted: dict[str, str], where: str) -> None:
    """Each `wanted` column (param name -> column) must be in `available`; else a did-you-mean error."""
    names = list(available)
    missing = missing_columns(names, wanted, where)
    if missing:
        at, column, hint = missing[0]
        raise CurateError(f"no column {column!r}{hint}; the rows have: {', '.join(names)} (score columns come "
                          "from score.* steps placed before this one)", at)


def to_array(name: str, data) -> pa.Array:
    """One returned column as an Arrow array; `<x>_why` columns are always strings."""
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks()
    if isinstance(data, pa.Array):
        return data
    if isinstance(data, np.ndarray) and data.ndim == 1:
        return pa.array(data)
    if name.endswith("_why"):
        return pa.array(data, type=pa.string())
    return pa.array(list(data))


# -- the steps ------------------------------------------------------------------------------------------


class Step:
    # The registered name is the step's file under curate/steps (`score/ifd.py` -> `score.ifd`); `aliases` are
    # older names a recipe may still write (the registry resolves them; the run records the recipe's spelling).
    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    role: ClassVar[Literal["transform", "score", "filter", "select"]]
    scope: ClassVar[Literal["row", "global"]] = "row"
    Params: ClassVar[type[StepParams]] = StepParams

    def __init__(self, params: StepParams, ctx: StepContext):
        self.params = params
        self.ctx = ctx

    @classmethod
    def cache_token(cls, params: StepParams, recipe_dir: str = ".") -> str | None:
        """What decides this step's result besides its params (the content of a file it reads, say);
        it joins the step's cache key, so editing that file re-runs the step."""
        return None

    def reads(self) -> dict[str, str]:
        """Columns this step reads besides the canonical ones, by the parameter that names each."""
        return {}

    def adds(self) -> list[str]:
        """Columns this step adds or rewrites."""
        return []

    def parallel(self) -> bool:
        """May the engine run this step in several worker processes at once? A step that loads a model
        says no: it runs in the main process, where the model is loaded once."""
        return True

    def apply(self, batch: pa.Table) -> BatchResult:  # row-local steps: see the role classes
        raise NotImplementedError(f"{self.name} is a global step")

    def on_table(self, rows) -> tuple[pa.Table, dict[int, Drop]]:
        """This step on one in-memory table of rows, as the engine runs it: the rows it keeps (with the
        columns it sets) and why it dropped the others (by row index)."""
        table = as_table(rows)
        if self.role == "select":
            chosen = sorted(set(self.select(table)))
            drop = self.not_selected()
            drops = {i: drop for i in range(table.num_rows) if i not in set(chosen)}
            result = BatchResult(drops=drops)
        elif self.role == "filter" and self.scope == "global":
            result = BatchResult(drops=checked_drops(self, self.decide(table), table.num_rows))
        else:
            result = self.apply(table)
        for name, arr in result.columns.items():
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, arr)
            else:
                table = table.append_column(name, arr)
        if result.drops:
            table = table.filter(pa.array([i not in result.drops for i in range(table.num_rows)]))
        return table, result.drops


class Transform(Step):
    role = "transform"

    def transform(self, batch: pa.Table) -> dict[str, list]:  # replaced columns, one value per row
        raise NotImplementedError

    def adds(self) -> list[str]:
        return ["messages"]

    def apply(self, batch: pa.Table) -> BatchResult:
        new = self.transform(batch)
        n = batch.num_rows
        columns, changed = {}, np.zeros(n, dtype=bool)
        for col, data in new.items():
            arr = to_array(col, data)
            if len(arr) != n:
                raise RuntimeError(f"{self.ctx.label}: a transform returned {len(arr)} values of {col} for {n} rows")
            if col in batch.column_names:
                arr = arr.cast(batch.schema.field(col).type)
                changed |= ~same_rows(batch.column(col).combine_chunks(), arr)
            else:
                changed[:] = True
            columns[col] = arr
        return BatchResult(columns=columns, changed=changed)


def same_rows(old: pa.Array, new: pa.Array) -> np.ndarray:
    """Per row, whether `old` and `new` hold equal values (as their Python values compare). Lists of structs of
    strings (conversations) are compared in Arrow: two conversions into Python cost ~11 µs a row."""
    t = old.type
    if not (t == new.type and len(old) == len(new) and pa.types.is_list(t) and pa.types.is_struct(t.value_type)
            and all(pa.types.is_string(f.type) for f in t.value_type)):
        return np.asarray([a == b for a, b in zip(old.to_pylist(), new.to_pylist())], dtype=bool)
    valid_old, valid_new = _valid(old), _valid(new)
    offsets_old, offsets_new = old.offsets.to_numpy(), new.offsets.to_numpy()
    lengths_old = np.diff(offsets_old)
    same = (valid_old == valid_new) & (~valid_old | (lengths_old == np.diff(offsets_new)))
    rows = np.flatnonzero(same & valid_old & (lengths_old > 0))  # rows whose items are to be compared
    if len(rows):
        counts = lengths_old[rows]
        first = np.repeat(np.cumsum(counts) - counts, counts)  # each compared item's place within its row
        within = np.arange(counts.sum()) - first
        # flatten() starts at the first row's first item
        items_old = old.flatten().take(np.repeat(offsets_old[rows] - offsets_old[0], counts) + within)
        items_new = new.flatten().take(np.repeat(offsets_new[rows] - offsets_new[0], counts) + within)
        present_old, present_new = _valid(items_old), _valid(items_new)
        item_ok = present_old == present_new
        both = present_old & present_new
        for k in range(t.value_type.num_fields):
            a, b = items_old.field(k), items_new.field(k)
            equal = np.asarray(pc.fill_null(pc.equal(a, b), False)) | (~_valid(a) & ~_valid(b))
            item_ok &= ~both | equal
        bad_items = np.bincount(np.repeat(np.arange(len(rows)), counts), weights=~item_ok, minlength=len(rows))
        same[rows] = bad_items == 0
    return same


def _valid(arr: pa.Array) -> np.ndarray:
    return np.ones(len(arr), dtype=bool) if arr.null_count == 0 else np.asarray(arr.is_valid())


class Scorer(Step):
    role = "score"

    def score(self, batch: pa.Table) -> dict[str, list]:  # new column name -> one value per row
        raise NotImplementedError

    def apply(self, batch: pa.Table) -> BatchResult:
        return BatchResult(columns=self.checked_columns(self.score(batch), batch.num_rows))

    def checked_columns(self, cols: dict, n: int) -> dict[str, pa.Array]:
        """The returned columns as arrays of `n` values; NaN and None scores are counted for the manifest."""
        out = {}
        for col, data in cols.items():
            arr = to_array(col, data)
            if len(arr) != n:
                raise RuntimeError(f"{self.ctx.label}: column {col} has {len(arr)} values for {n} rows")
            if not col.endswith("_why"):
                missing = arr.null_count if not pa.types.is_floating(arr.type) else \
                    pc.sum(pc.is_null(arr, nan_is_null=True)).as_py() or 0
                if missing:
                    self.ctx.count(col, missing, group="unscored_rows")
            out[col] = arr
        return out


class ModelScorer(Scorer):
    """A scorer that loads a model: it runs in the main process (the model is loaded once, and the model
    uses every core itself), batch by batch."""

    def parallel(self) -> bool:
        return False


class Filter(Step):
    role = "filter"

    def decide(self, batch: pa.Table) -> list[Drop | None]:  # one entry per row: None keeps it
        raise NotImplementedError

    def apply(self, batch: pa.Table) -> BatchResult:
        decisions = self.decide(batch)
        return BatchResult(drops=checked_drops(self, decisions, batch.num_rows))


def checked_drops(step: Step, decisions: list, n: int) -> dict[int, Drop]:
    if len(decisions) != n:
        raise RuntimeError(f"{step.ctx.label}: {len(decisions)} decisions for {n} rows")
    return {i: d for i, d in enumerate(decisions) if d is not None}


class GlobalFilter(Filter):
    """A filter that decides over all rows at once (the deduplicators).

    `keys(batch)` (optional) computes per-row keys row-locally; `decide(table, keys)` gets `id`, the
    `reads()` columns and those keys (numpy arrays, one entry per row) for every row. Called with a table
    alone (tests, the Python API on a small table), `decide` computes the keys itself."""

    scope = "global"

    def keys(self, batch: pa.Table) -> dict[str, np.ndarray] | None:
        return None

    def needs_keys(self) -> bool:
        """Does `decide` need `keys` (the engine then computes them in a pass over the rows)?"""
        return type(self).keys is not GlobalFilter.keys

    def decide(self, table: pa.Table, keys: dict[str, np.ndarray] | None = None) -> list[Drop | None]:
        raise NotImplementedError

    def grouping(self, table: pa.Table, keys: dict | None = None) -> Grouping | None:
        """The decision as a group-by, for an engine that can shuffle rows across machines (Ray), or None
        (then the engine calls `decide`). A step that returns one makes `decide` the same computation in
        one process: `finish(groups(rows))`."""
        return None

    def own_keys(self, table: pa.Table, keys: dict | None) -> dict:
        """`keys` as given by the engine, or computed here from a table that holds the rows."""
        if keys is not None:
            return keys
        return self.keys(as_table(table)) or {}


class Budget(StepParams):
    """Exactly one of `rows` or `tokens`; tokens are read from `token_column`."""

    rows: int | None = None
    tokens: int | None = None
    token_column: str = "n_tokens"

    @model_validator(mode="after")
    def _one_budget(self):
        if (self.rows is None) == (self.tokens is None):
            raise ValueError("give exactly one budget: rows or tokens")
        if (self.rows or 1) < 1 or (self.tokens or 1) < 1:
            raise ValueError("the budget must be at least 1")
        return self

    def text(self) -> str:
        return f"budget {self.rows} rows" if self.rows is not None else f"budget {self.tokens} tokens"


class Selector(Step):
    role = "select"
    scope = "global"
    Params: ClassVar[type[Budget]] = Budget

    def select(self, table: pa.Table) -> list[int]:  # indices of the chosen rows
        raise NotImplementedError

    def reads(self) -> dict[str, str]:
        return {"token_column": self.params.token_column} if self.params.tokens is not None else {}

    # -- shared budget logic ---------------------------------------------------------------------

    def row_costs(self, table) -> np.ndarray:
        """What each row costs against the budget: 1 per row, or its token count."""
        table = as_table(table)
        p = self.params
        if p.rows is not None:
            return np.ones(table.num_rows, dtype=np.int64)
        if p.token_column not in table.column_names:
            raise CurateError(
                f"a token budget needs the column {p.token_column!r}; add a scorer that counts tokens "
                "(score.tokens) before this step",
                self.ctx.where,
            )
        costs = numbers(table, p.token_column, self.ctx.where, "count tokens")
        if np.isnan(costs).any():
            raise CurateError(f"column {p.token_column!r} has missing token counts", self.ctx.where)
        return costs.astype(np.int64)

    def check_budget(self, table, eligible: int | None = None) -> None:
        """A budget larger than the rows (or tokens) available is an error, not a silent shortfall."""
        p = self.params
        costs = self.row_costs(table)
        available = int(costs.sum()) if eligible is None else eligible
        wanted = p.rows if p.rows is not None else p.tokens
        unit = "rows" if p.rows is not None else "tokens"
        if wanted > available:
            raise CurateError(
                f"budget of {wanted} {unit} is larger than the {available} {unit} available at this step",
                f"{self.ctx.where}.{unit}",
            )

    def take_in_order(self, table, order: Iterable[int]) -> list[int]:
        """Walk rows in `order`, taking each that still fits, until the budget is spent."""
        p = self.params
        limit = p.rows if p.rows is not None else p.tokens
        return take_within(order, self.row_costs(table), limit, by_rows=p.rows is not None)

    def not_selected(self) -> Drop:
        return Drop(reason=f"not selected by {self.ctx.label} ({self.params.text()})")


def take_within(order: Iterable[int], costs: np.ndarray, limit: int, by_rows: bool) -> list[int]:
    """Walk rows in `order`, taking each whose cost still fits under `limit`, until it is spent."""
    chosen, spent = [], 0
    for i in order:
        c = int(costs[i])
        if spent + c > limit:
            if by_rows:
                break
            continue  # a long row may not fit while shorter ones still do
        chosen.append(int(i))
        spent += c
        if spent >= limit:
            break
    return chosen
