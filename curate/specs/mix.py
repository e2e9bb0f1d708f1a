"""The recipe's `mix:` section (curate.mix carries it out; its docstring says what each key does): the
schema lives here, below the steps and the engine, so that the recipe can validate it without importing
the mixing code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from curate.strict import StrictModel


class MixSize(StrictModel):
    rows: int | None = Field(default=None, ge=1)
    tokens: int | None = Field(default=None, ge=1)
    token_column: str = "n_tokens"

    @model_validator(mode="after")
    def _one(self):
        if (self.rows is None) == (self.tokens is None):
            raise ValueError("give exactly one of rows or tokens")
        return self


class Component(StrictModel):
    source: str | None = None  # a source of this recipe, taken after the recipe's steps
    run: str | None = None  # a run folder written by `curate run` (its data.parquet or data.jsonl)
    recipe: str | None = None  # a recipe file, run (through its cache) for its output
    overrides: list[str] = Field(default_factory=list)  # --set overrides for that recipe
    fraction: float | None = Field(default=None, ge=0, le=1)
    count: int | None = Field(default=None, ge=0)
    of_component: float | None = Field(default=None, ge=0, le=1)
    holdout: int = Field(default=0, ge=0)  # rows set aside before any draw, the same at every share
    resample: Literal["once", "per_epoch"] = "once"  # per_epoch: a fresh draw for each of mix.epochs

    @model_validator(mode="after")
    def _one_origin(self):
        origins = [k for k in ("source", "run", "recipe") if getattr(self, k)]
        if len(origins) != 1:
            raise ValueError(f"give exactly one of source, run or recipe (got {origins or 'none'})")
        shares = [k for k in ("fraction", "count", "of_component") if getattr(self, k) is not None]
        if len(shares) > 1:
            raise ValueError(f"give one of fraction, count or of_component, not {shares}")
        return self

    @property
    def share_kind(self) -> str | None:
        return next((k for k in ("fraction", "count", "of_component") if getattr(self, k) is not None), None)


class MixSpec(StrictModel):
    components: dict[str, Component]
    size: MixSize | None = None
    short: Literal["upsample", "shrink", "error"] = "error"
    temperature: float | None = Field(default=None, gt=0)
    shuffle: bool = True  # interleave the components in a seeded order (else component by component)
    epochs: int = Field(default=1, ge=1)  # training epochs a `resample: per_epoch` component is drawn for (else unused)

    @model_validator(mode="after")
    def _consistent(self):
        if not self.components:
            raise ValueError("a mix needs at least one component")
        resampled = [n for n, c in self.components.items() if c.resample == "per_epoch"]
        if resampled and self.epochs < 2:
            raise ValueError(f"{resampled} resample per epoch: set `epochs` to the training's epochs (2 or more)")
        if resampled and self.size is not None and self.size.tokens is not None:
            raise ValueError(f"`resample: per_epoch` ({resampled}) needs a mix size in rows, not tokens")
        kinds = {name: c.share_kind for name, c in self.components.items()}
        if self.temperature is not None:
            given = [n for n, k in kinds.items() if k]
            if given:
                raise ValueError(f"with temperature the shares come from component sizes; remove fraction/count/of_component from {given}")
            if self.size is None:
                raise ValueError("temperature sampling needs `size`")
            return self
        missing = [n for n, k in kinds.items() if k is None]
        if missing:
            raise ValueError(f"components {missing} need one of fraction, count or of_component (or set temperature)")
        if any(k == "fraction" for k in kinds.values()):
            others = [n for n, k in kinds.items() if k != "fraction"]
            if others:
                raise ValueError(f"fractions are shares of the final mix: every component needs one, not count/of_component ({others})")
            total = sum(c.fraction for c in self.components.values())
            if abs(total - 1) > 1e-6:
                raise ValueError(f"fractions must sum to 1, they sum to {total:g}")
            if self.size is None:
                raise ValueError("fractions of the final mix need `size` (rows or tokens)")
        elif self.size is not None:
            raise ValueError("with count/of_component the mix size is their sum: remove `size`")
        return self
