"""Running a recipe, from the command line or from Python.

`run_recipe(recipe)` runs the engine (curate.engine.run) with what the recipe's feature sections add on top:
the mix (curate.mix) as the engine's `finish` hook, and the data card at the end (`card: {write: true}`).

`Pipeline` is the same thing built in Python; a recipe is its serialised form:

    from curate import Pipeline, steps

    pipe = Pipeline(
        name="mine",
        sources={"chat": {"path": "data/chat.jsonl", "license": "cc-by-4.0"}},
        steps=[steps.Clean(), steps.Heuristics(), steps.Filter(rules=["response_words >= 3"]),
               steps.MinHashDedup(threshold=0.8), steps.RandomSelect(rows=1000)],
        outputs={"dir": "runs/mine", "formats": ["jsonl", "parquet"]},
    )
    result = pipe.run()                # or pipe.run(a_datasets_Dataset): it becomes the only source
    result.dataset, result.manifest    # the curated rows (datasets.Dataset) and the manifest
    for reject in result.rejects(): ...
    Pipeline.from_recipe("recipes/quickstart.yaml").to_recipe()   # a dict, as the YAML file says
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

from curate.engine.run import Reporter, RunResult, StepReport
from curate.engine.run import run as run_engine
from curate.errors import CurateError
from curate.io import quiet_datasets
from curate.ledger import reason_group
from curate.recipe import Recipe
from curate.runfolder import MANIFEST, funnel_rows


def run_recipe(recipe: Recipe, reporter: Reporter | None = None, use_cache: bool | None = None,
               recipe_dir: str | None = None, workers: int | str | None = None) -> RunResult:
    """Run `recipe` and write its run folder. `recipe_dir` is the folder its relative paths start from
    (default: the recipe file's folder; the current one for a recipe built in Python). `workers` overrides
    `executor.workers`."""
    if recipe_dir is not None:
        recipe.with_base_dir(recipe_dir)
    if workers is not None:
        recipe.executor.workers = workers
    finish = None
    if recipe.mix is not None:
        from curate.mix import mix_hook

        finish = mix_hook(recipe, _run_component)
    result = run_engine(recipe, reporter, use_cache, finish=finish)
    if recipe.card is not None and recipe.card.write:
        from curate.card.writer import write_card

        write_card(result.out_dir, recipe.card)
    return result


def _run_component(path: Path, overrides: list[str] | None) -> Path:
    """A mix component given as a recipe: run it (through its cache) and return its run folder."""
    from curate.recipe import load_recipe

    return run_recipe(load_recipe(path, overrides)).out_dir


class PipelineResult:
    """What `Pipeline.run` made: the run folder, its manifest, the curated rows and the rejects."""

    def __init__(self, result: RunResult):
        self.run = result
        self.out_dir = result.out_dir
        self.manifest = result.manifest
        self.steps = result.steps
        self.warnings = result.warnings

    @property
    def dataset(self):
        """The curated rows as a `datasets.Dataset` (from the run folder's parquet or jsonl)."""
        datasets = quiet_datasets()
        Dataset = datasets.Dataset
        for name, builder in (("data.parquet", Dataset.from_parquet), ("data.jsonl", Dataset.from_json)):
            path = self.out_dir / name
            if path.is_file():
                return builder(str(path), keep_in_memory=True)
        return datasets.load_from_disk(str(self.out_dir / "data"))

    def rejects(self) -> Iterator[dict]:
        """Every dropped row with its step and reason, one dict at a time."""
        import json

        with open(self.out_dir / "rejects.jsonl", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


class Pipeline:
    """A recipe built in Python: `Pipeline(steps=[...], sources={...}, ...)` takes the recipe's keys as
    keyword arguments; steps are `curate.steps.<Name>(**params)` objects (or `{name: params}` dicts)."""

    def __init__(self, steps: list = (), *, sources: dict | None = None, name: str = "pipeline",
                 base_dir: str | os.PathLike | None = None, **recipe: Any):
        from curate.recipe import validate_recipe

        raw = {"name": name, "sources": sources or {}, "steps": [_step_entry(s) for s in steps], **recipe}
        base = os.path.abspath(base_dir or ".")
        for src in raw["sources"].values():
            if isinstance(src, dict) and src.get("path"):
                paths = src["path"] if isinstance(src["path"], list) else [src["path"]]
                fixed = [p if str(p).startswith(("http://", "https://")) else os.path.join(base, p) for p in paths]
                src["path"] = fixed if isinstance(src["path"], list) else fixed[0]
        self._raw = raw
        self._base = base
        self.recipe = validate_recipe({**raw, "sources": raw["sources"] or {"_": {"path": "-"}}}, where="Pipeline")
        if not raw["sources"]:
            self.recipe.sources = {}
        self.recipe.with_base_dir(base)

    @classmethod
    def from_recipe(cls, recipe: str | os.PathLike | Recipe, overrides: list[str] | None = None) -> "Pipeline":
        """The pipeline of a recipe file (or a Recipe object)."""
        from curate.recipe import load_recipe

        loaded = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
        pipe = cls.__new__(cls)
        pipe.recipe, pipe._base = loaded, loaded.base_dir
        return pipe

    def to_recipe(self) -> dict:
        """The recipe as data (what a YAML file holds): input paths relative to `base_dir`."""
        return self.recipe.resolved()

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_recipe(), sort_keys=False, allow_unicode=True)

    def run(self, data=None, *, reporter: Reporter | None = None, use_cache: bool | None = None,
            workers: int | str | None = None) -> PipelineResult:
        """Run and write the run folder (`outputs.dir`, default runs/<name>). `data` (a datasets.Dataset, a
        pyarrow Table, a list of dicts, or a file path) replaces the sources with one source, `data`."""
        recipe = self.recipe
        if data is not None:
            recipe = recipe.model_copy(deep=True)
            recipe.sources = {"data": _data_source(data, self._base)}
            recipe._base_dir = self._base
        if not recipe.sources:
            raise CurateError("the pipeline has no sources: give sources= or run(data)", "Pipeline")
        return PipelineResult(run_recipe(recipe, reporter, use_cache, workers=workers))

    def __repr__(self) -> str:
        steps = ", ".join(f"{label}" for label, _, _ in self.recipe.step_entries())
        return f"Pipeline({self.recipe.name!r}: {steps or 'no steps'})"


def _step_entry(step) -> dict:
    if hasattr(step, "to_recipe"):
        return step.to_recipe()
    if isinstance(step, str):
        return {step: {}}
    if isinstance(step, dict):
        return step
    raise CurateError(f"a step is curate.steps.<Name>(...) or {{name: params}}, not {step!r}", "Pipeline.steps")


def _data_source(data, base: str):
    from curate.specs.source import Source

    if isinstance(data, (str, os.PathLike)):
        return Source(path=os.path.join(base, str(data)))
    return Source(data=data, license=None)


__all__ = ["run_recipe", "Pipeline", "PipelineResult", "RunResult", "Reporter", "StepReport", "funnel_rows",
           "reason_group", "MANIFEST"]
