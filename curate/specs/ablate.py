"""The recipe's `ablate:` section: a grid of recipe variants that `curate ablate` builds."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from curate.strict import StrictModel

_RATIO = re.compile(r"^\s*\d+(\.\d+)?(\s*:\s*\d+(\.\d+)?)+\s*$")


class AblateSpec(StrictModel):

    dir: str | None = None  # default runs/<name>-ablate
    components: list[str] | None = None  # which mix components `ratios` refer to (default: all, in order)
    ratios: list[str] = Field(default_factory=list)  # "10:90": shares of the final mix, in `components` order
    sizes: list[int] = Field(default_factory=list)  # mix sizes (in the mix's unit: rows or tokens)
    grid: dict[str, list[Any]] = Field(default_factory=dict)  # any recipe path -> values (cartesian)
    schedule: list[Literal["mixed", "sequential"]] = Field(default_factory=list)  # sequential: general first, then the rest
    general: str | None = None  # the component whose share r the fit is a law of (default `general`, else the first)
    retention: float = Field(0.98, gt=0, lt=2)  # keep this share of the base model's general score (curate.train.grid_fit)
    bootstrap: int = Field(200, ge=20)  # bootstrap replicates over seeds for the fit's bands and interval

    @field_validator("ratios")
    @classmethod
    def _ratio_shape(cls, v):
        for r in v:
            if not _RATIO.match(str(r)):
                raise ValueError(f"a ratio looks like '10:90' (one number per component), got {r!r}")
            if sum(float(x) for x in str(r).split(":")) <= 0:
                raise ValueError(f"ratio {r!r} sums to zero")
        return v

    @field_validator("sizes")
    @classmethod
    def _positive(cls, v):
        if any(s < 1 for s in v):
            raise ValueError("sizes must be at least 1")
        return v
