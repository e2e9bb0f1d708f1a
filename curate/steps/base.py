"""The step contracts.

Four roles that never mix:
- Transform (`clean`): rewrites message text; never adds or drops rows.
- Scorer: adds numeric columns; never drops a row. A row it cannot score gets NaN and, in
  `<column>_why`, the reason.
- Filter (filters and deduplicators): keeps or drops each row; every drop carries a reason.
- Selector: picks a budgeted, seeded subset; the rows it leaves out go to the ledger as "not selected".

A step declares `name` (its recipe name), `role`, and `Params` (a pydantic model; unknown keys are
errors). The pipeline builds it as `Step(params, ctx)` and calls the one method its role defines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
import re
from typing import Annotated, Any, ClassVar, Iterable, Literal

import numpy as np
from datasets import Dataset
from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from curate.errors import CurateError


def _valid_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as e:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {e}") from None
    return pattern


# A regex given in a recipe: checked when the recipe is validated, so the error names the list index.
Regex = Annotated[str, AfterValidator(_valid_regex)]


class StepParams(BaseModel):
    """Base for every step's parameters: unknown keys are errors, values are checked."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class StepContext:
    """What a step may know about the run it is in."""

    label: str  # the step's name in the ledger and the manifest, e.g. "dedup.minhash" or "filter#2"
    where: str  # the recipe location of its parameters, for error messages, e.g. "steps[3].dedup.minhash"
    seed: int  # the recipe seed, already mixed with the step position
    recipe_dir: str = "."  # for parameters that name files relative to the recipe
    notes: dict = field(default_factory=dict)  # facts the step reports into the manifest (e.g. coverage)

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


@dataclass(frozen=True)
class Drop:
    """Why a filter or deduplicator dropped one row."""

    reason: str  # short, names the rule: "response_words < 3", "exact duplicate (prompt)"
    duplicate_of: str | None = None  # id of the kept row this one duplicated
    detail: dict | None = None  # anything else worth keeping (similarity, matched pattern, ...)


class Step:
    name: ClassVar[str]
    role: ClassVar[Literal["transform", "score", "filter", "select"]]
    Params: ClassVar[type[StepParams]] = StepParams

    def __init__(self, params: StepParams, ctx: StepContext):
        self.params = params
        self.ctx = ctx

    @classmethod
    def cache_token(cls, params: StepParams, recipe_dir: str = ".") -> str | None:
        """What decides this step's result besides its params (the content of a file it reads, say);
        it joins the step's cache key, so editing that file re-runs the step."""
        return None


class Transform(Step):
    role = "transform"

    def transform(self, ds: Dataset) -> Dataset:  # same rows, rewritten messages
        raise NotImplementedError


class Scorer(Step):
    role = "score"

    def score(self, ds: Dataset) -> dict[str, list]:  # new column name -> one value per row
        raise NotImplementedError


class Filter(Step):
    role = "filter"

    def decide(self, ds: Dataset) -> list[Drop | None]:  # one entry per row: None keeps it
        raise NotImplementedError


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


class Selector(Step):
    role = "select"
    Params: ClassVar[type[Budget]] = Budget

    def select(self, ds: Dataset) -> list[int]:  # indices of the chosen rows
        raise NotImplementedError

    # -- shared budget logic ---------------------------------------------------------------------

    def row_costs(self, ds: Dataset) -> np.ndarray:
        """What each row costs against the budget: 1 per row, or its token count."""
        p = self.params
        if p.rows is not None:
            return np.ones(len(ds), dtype=np.int64)
        if p.token_column not in ds.column_names:
            raise CurateError(
                f"a token budget needs the column {p.token_column!r}; add a scorer that counts tokens "
                "(score.tokens) before this step",
                self.ctx.where,
            )
        costs = np.asarray(ds[p.token_column], dtype=float)
        if np.isnan(costs).any():
            raise CurateError(f"column {p.token_column!r} has missing token counts", self.ctx.where)
        return costs.astype(np.int64)

    def check_budget(self, ds: Dataset, eligible: int | None = None) -> None:
        """A budget larger than the rows (or tokens) available is an error, not a silent shortfall."""
        p = self.params
        costs = self.row_costs(ds)
        available = int(costs.sum()) if eligible is None else eligible
        wanted = p.rows if p.rows is not None else p.tokens
        unit = "rows" if p.rows is not None else "tokens"
        if wanted > available:
            raise CurateError(
                f"budget of {wanted} {unit} is larger than the {available} {unit} available at this step",
                f"{self.ctx.where}.{unit}",
            )

    def take_in_order(self, ds: Dataset, order: Iterable[int]) -> list[int]:
        """Walk rows in `order`, taking each that still fits, until the budget is spent."""
        p = self.params
        limit = p.rows if p.rows is not None else p.tokens
        return take_within(order, self.row_costs(ds), limit, by_rows=p.rows is not None)


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


def is_nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))
