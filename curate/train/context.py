"""A recipe with its training sections split off, and its run folder (run again when missing or stale).

Shared by `curate train`, `curate compare` and `curate ablate --train`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from curate.errors import CurateError
from curate.specs.evals import EvalSpec
from curate.specs.train import CompareSpec, TrainSpec

# recipe keys that do not change the data a run writes (the manifest's recipe is compared without them)
NOT_DATA = ("train", "evals", "compare", "card", "ablate", "description", "cache")


# -- the training sections of a recipe ------------------------------------------------------------------


SECTIONS = {"train": TrainSpec, "evals": EvalSpec, "compare": CompareSpec}


def split_sections(raw: dict, where: str = "recipe") -> tuple[dict, TrainSpec, EvalSpec, CompareSpec]:
    """(the recipe dict for `validate_recipe`, TrainSpec, EvalSpec, CompareSpec) from a raw recipe dict.

    Works whether or not the `Recipe` model declares the sections: when it does not, they are taken out of
    the dict before validation. Missing sections get their defaults; errors name the field.
    """
    from pydantic import ValidationError

    from curate.recipe import Recipe
    from curate.strict import format_errors

    raw = copy.deepcopy(raw)
    specs = []
    for name, model in SECTIONS.items():
        value = raw.get(name) if name in Recipe.model_fields else raw.pop(name, None)
        try:
            specs.append(model.model_validate(value or {}))
        except ValidationError as e:
            raise CurateError(format_errors(e, model, prefix=name), where) from None
    return raw, specs[0], specs[1], specs[2]


# -- the run folder of a recipe --------------------------------------------------------------------------


class RecipeContext:
    """A recipe with its training sections split off, and its run folder (run when missing or stale)."""

    def __init__(self, recipe_path, overrides=None):
        from curate.recipe import load_raw, validate_recipe

        self.path = Path(recipe_path)
        self.where = str(recipe_path)
        raw = load_raw(recipe_path, overrides)
        self.data_raw, self.train_spec, self.eval_spec, self.compare_spec = split_sections(raw, self.where)
        self.raw = raw
        self.recipe = validate_recipe(copy.deepcopy(self.data_raw), where=self.where)
        self.run_dir = self.recipe.output_dir()
        self.recipe_dir = str(self.path.parent)

    @property
    def cache_dir(self) -> Path:
        return Path(self.recipe.cache.dir) / "evals"

    def given(self, section: str, key: str) -> bool:
        """Whether the recipe (or an override) sets `section.key`."""
        value = self.raw.get(section)
        return isinstance(value, dict) and key in value

    def ensure_run(self, rerun: bool = False, progress=None) -> dict:
        """The run folder's manifest, running the recipe first when the folder is missing, was written by a
        different recipe (data-relevant keys differ), or `rerun`."""
        manifest_path = self.run_dir / "manifest.json"
        if not rerun and manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if _data_view(manifest.get("recipe", {})) == _data_view(self.recipe.resolved()):
                return manifest
        from curate.pipeline import run_recipe

        if progress:
            progress(f"running the recipe {self.where} into {self.run_dir}")
        result = run_recipe(self.recipe, recipe_dir=self.recipe_dir)
        if progress and result.removed_note():
            progress(result.removed_note())
        return result.manifest

    def selector(self) -> tuple[int, str, dict]:
        """(index, label, params) of the last select step."""
        from curate.steps.registry import get_step

        found = None
        for i, (label, name, params) in enumerate(self.recipe.step_entries()):
            if get_step(name).role == "select":
                found = (i, label, params)
        if found is None:
            raise CurateError("the recipe has no select step: there is no selection to compare with a random subset "
                              "of its pool", f"{self.where}: steps")
        return found

    def build_pool(self, out_dir: Path, progress=None) -> list[dict]:
        """The rows the last selector chose from, rendered by the recipe's template (a run of the recipe
        without that selector and the steps after it; the earlier steps come from the cache)."""
        from curate.pipeline import run_recipe
        from curate.recipe import validate_recipe
        from curate.train.data import read_rows

        index, label, _ = self.selector()
        raw = copy.deepcopy(self.data_raw)
        raw["steps"] = list(raw.get("steps") or [])[:index]
        for key in ("mix", "ablate", "card"):
            raw.pop(key, None)
        raw["name"] = f"{self.recipe.name}-pool"
        # parquet: a pool carries every score column (embeddings too), 5-10x smaller than jsonl
        raw["outputs"] = {"dir": str(out_dir), "formats": ["parquet"], "random_baseline": False}
        if progress:
            progress(f"rebuilding the pool before {label} into {out_dir}")
        run_recipe(validate_recipe(raw, where=f"{self.where} (pool before {label})"), recipe_dir=self.recipe_dir)
        return read_rows(out_dir)


def _data_view(resolved: dict) -> dict:
    return {k: v for k, v in resolved.items() if k not in NOT_DATA}
