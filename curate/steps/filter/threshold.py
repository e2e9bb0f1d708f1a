"""`filter`: keep the rows whose score columns pass every rule."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import pyarrow as pa
from pydantic import ConfigDict, Field, model_serializer, model_validator

from curate.errors import CurateError
from curate.ledger import Drop
from curate.numbers import is_missing
from curate.steps.base import Filter, StepParams, as_table, require_columns, values
from curate.steps.registry import register
from curate.strict import StrictModel

_COMPACT = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(>=|<=|==|!=|>|<)\s*(.*?)\s*$")
_OPERATORS = {">=": "min", "<=": "max", ">": "above", "<": "below", "==": "equals", "!=": "not_in"}
_NUMERIC = ("min", "max", "above", "below")


class Rule(StrictModel):
    """One condition on one column: `{column: response_words, min: 3}` or `"response_words >= 3"`.

    `min`/`max` are inclusive bounds, `above`/`below` strict ones; `equals`, `in` and `not_in`
    compare values (numbers or strings). A row passes when it meets every condition given.
    """

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    column: str
    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None
    equals: Any = None
    in_: list[Any] | None = Field(None, alias="in")
    not_in: list[Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _compact(cls, data):
        if not isinstance(data, str):
            return data
        m = _COMPACT.match(data)
        if not m or not m.group(3):
            raise ValueError(
                f"cannot read the rule {data!r}: write '<column> <op> <value>' with op one of "
                ">=, <=, >, <, ==, != (e.g. 'response_words >= 3')"
            )
        column, op, raw = m.groups()
        field = _OPERATORS[op]
        value = _literal(raw)
        if field in _NUMERIC and not isinstance(value, (int, float)):
            raise ValueError(f"in the rule {data!r}, {op} needs a number, not {raw!r}")
        return {"column": column, field: [value] if field == "not_in" else value}

    @model_validator(mode="after")
    def _some_condition(self):
        conditions = (self.min, self.max, self.above, self.below, self.equals, self.in_, self.not_in)
        if all(c is None for c in conditions):
            raise ValueError(
                f"the rule on {self.column!r} has no condition: give min, max, above, below, equals, in or not_in"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"the rule on {self.column!r} has min {self.min} > max {self.max}: no row can pass")
        return self

    @model_serializer(mode="wrap")
    def _only_given(self, handler):
        # the manifest shows {column: x, min: 3}, not every unset condition
        return {k: v for k, v in handler(self).items() if v is not None}

    @property
    def numeric(self) -> bool:
        return any(getattr(self, f) is not None for f in _NUMERIC)

    def failure(self, v) -> str | None:
        """Why `v` fails this rule, or None when it passes."""
        c, s = self.column, _show(v)
        if self.min is not None and v < self.min:
            return f"{c}={s} < min {_show(self.min)}"
        if self.max is not None and v > self.max:
            return f"{c}={s} > max {_show(self.max)}"
        if self.above is not None and not v > self.above:
            return f"{c}={s}, not > {_show(self.above)}"
        if self.below is not None and not v < self.below:
            return f"{c}={s}, not < {_show(self.below)}"
        if self.equals is not None and v != self.equals:
            return f"{c}={s} != {_show(self.equals)}"
        if self.in_ is not None and v not in self.in_:
            return f"{c}={s} not in [{', '.join(_show(x) for x in self.in_)}]"
        if self.not_in is not None and v in self.not_in:
            return f"{c}={s} is excluded (not_in [{', '.join(_show(x) for x in self.not_in)}])"
        return None


@register
class Threshold(Filter):
    """Drop rows that fail any rule on their columns (usually scores added by earlier score steps).

    Params:
    - `rules` (required): a list of rules; each is a mapping `{column, min, max, above, below,
      equals, in, not_in}` or a compact string such as "response_words >= 3", "lang == en",
      "refusal < 1" (ops >=, <=, >, <, ==, !=). The first rule a row fails is its drop reason,
      e.g. "response_words=1 < min 3".
    - `on_nan` ("drop"): what to do with a row whose value is missing (NaN, None, or a reason in
      `<column>_why`): "drop" it, giving that reason ("nonalnum_ratio is NaN (empty response)"),
      or "keep" it (the rule is skipped for that row).
    """

    name = "filter.threshold"
    aliases = ("filter",)

    class Params(StepParams):
        rules: list[Rule] = Field(min_length=1)
        on_nan: Literal["drop", "keep"] = "drop"

    def reads(self) -> dict[str, str]:
        return {f"rules[{i}].column": r.column for i, r in enumerate(self.params.rules)}

    def decide(self, batch: pa.Table) -> list[Drop | None]:
        batch = as_table(batch)  # a datasets.Dataset works too
        rules = self.params.rules
        self._check_columns(batch)
        columns = {r.column: values(batch, r.column) for r in rules}
        whys = {c: values(batch, f"{c}_why") for c in columns if f"{c}_why" in batch.column_names}
        keep_missing = self.params.on_nan == "keep"

        decisions: list[Drop | None] = []
        for row in range(batch.num_rows):
            drop = None
            for i, rule in enumerate(rules):
                v = columns[rule.column][row]
                why = whys[rule.column][row] if rule.column in whys else None
                if why is not None or is_missing(v):
                    if keep_missing:
                        continue
                    reason = f"{rule.column} is {_missing_word(v)}" + (f" ({why})" if why else "")
                else:
                    reason = rule.failure(v)
                if reason:
                    drop = Drop(reason=reason, detail={"rule": i})
                    break
            decisions.append(drop)
        return decisions

    def _check_columns(self, batch: pa.Table) -> None:
        require_columns(batch.column_names, self.reads(), self.ctx.where)
        for i, rule in enumerate(self.params.rules):
            kind = batch.schema.field(rule.column).type
            numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind) \
                or pa.types.is_null(kind)
            if rule.numeric and not numeric:
                raise CurateError(
                    f"min/max/above/below compare numbers, but column {rule.column!r} holds {_dtype(kind)}",
                    f"{self.ctx.where}.rules[{i}]",
                )


def _dtype(kind: pa.DataType) -> str:
    """An Arrow type in the words datasets uses ("string", "a list")."""
    return "a list" if pa.types.is_list(kind) or pa.types.is_large_list(kind) else \
        "string" if pa.types.is_string(kind) or pa.types.is_large_string(kind) else str(kind)


def _literal(raw: str):
    """A compact rule's value: a quoted or bare string, an int, a float, or true/false."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for number in (int, float):
        try:
            value = number(raw)
        except ValueError:
            continue
        if math.isfinite(value):
            return value
    return raw


def _missing_word(v) -> str:
    return "missing" if v is None else "NaN" if isinstance(v, float) else "empty" if v == "" else repr(v)


def _show(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return repr(v) if isinstance(v, str) else str(v)
