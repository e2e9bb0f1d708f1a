"""The recipe: a YAML file validated by pydantic, with command-line overrides.

Errors name the field path (`sources.lima.format`, `steps[3].dedup.minhash.threshold`) and the bad
value; unknown keys and unknown step or format names get "did you mean ...".

Paths: input paths written in a recipe file (source files, template files) are relative to the
recipe file; values given with `--set` and `outputs.dir` / `cache.dir` are relative to the current
directory, like any command-line path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError, field_validator

from curate.errors import CurateError, did_you_mean
from curate.specs.ablate import AblateSpec
from curate.specs.card import CardSpec
from curate.specs.evals import EvalSpec
from curate.specs.mix import MixSpec
from curate.specs.source import Source
from curate.specs.train import CompareSpec, TrainSpec
from curate.strict import StrictModel, format_errors
from curate.templates.spec import TemplateSpec

OUTPUT_FORMATS = ("jsonl", "parquet", "arrow")


class Outputs(StrictModel):
    dir: str | None = None  # default runs/<name>
    formats: list[str] = Field(default_factory=lambda: ["jsonl"])
    random_baseline: bool = True  # beside a selection, write a random subset with the same budget

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, v):
        for f in v:
            if f not in OUTPUT_FORMATS:
                raise ValueError(f"unknown output format {f!r}{did_you_mean(f, OUTPUT_FORMATS)}; choose from {list(OUTPUT_FORMATS)}")
        if not v:
            raise ValueError("give at least one output format")
        return v


class Cache(StrictModel):
    enabled: bool = True
    dir: str = ".curate/cache"


class StepResources(StrictModel):
    """ray: what each task (row-local pass) or actor (model pass) of one step's pass asks Ray for."""

    num_cpus: float | None = Field(None, gt=0)
    num_gpus: float | None = Field(None, ge=0)  # a model step's actors (a row-local task never asks for a GPU)
    concurrency: int | None = Field(None, ge=1)  # a model step's actors; a row-local pass's tasks at once


class ExecutorSpec(StrictModel):
    """Where the steps run. How a run is executed never changes what it makes: this section is not part of
    the recipe's hash, and the manifest records it apart (its `executor` block)."""

    kind: Literal["local", "ray"] = "local"  # local: this machine; ray: a Ray cluster (pip install 'curate[ray]')
    workers: int | Literal["auto"] = "auto"  # local: processes for row-local steps (auto: one per core; 1: in-process)
    part_rows: int = Field(8192, ge=1)  # rows per part: the unit of parallel work (and of memory per worker)
    address: str | None = None  # ray: the cluster (auto, ray://host:10001, ...); default: start a local one
    num_cpus: float | None = Field(None, gt=0)  # ray: CPUs per row-local task (default 1)
    model_num_gpus: float | None = Field(None, ge=0)  # ray: GPUs per model actor (default: 1 when the cluster has GPUs)
    model_concurrency: int | None = Field(None, ge=1)  # ray: model actors per model step (default: GPUs, else 1)
    # ray: per step label (e.g. {embed: {num_gpus: 1, concurrency: 8}}), over the defaults above; a pass that
    # runs several steps together asks for the most CPUs and GPUs and the fewest actors any of them sets
    steps: dict[str, StepResources] = Field(default_factory=dict)
    # ray: where global steps that can run as shuffles decide (exact and MinHash dedup): `cluster` (Ray Data
    # shuffles, the driver gets the results) or `driver` (in one process: faster on a small pool, a check)
    global_steps: Literal["cluster", "driver"] = "cluster"

    @field_validator("workers")
    @classmethod
    def _some_workers(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError("workers must be at least 1, or auto")
        return v


class Recipe(StrictModel):
    name: str
    description: str = ""
    seed: int = 0
    sources: dict[str, Source]
    steps: list[dict[str, Any]] = Field(default_factory=list)
    template: TemplateSpec | None = Field(default_factory=TemplateSpec)
    outputs: Outputs = Field(default_factory=Outputs)
    cache: Cache = Field(default_factory=Cache)
    mix: MixSpec | None = None
    ablate: AblateSpec | None = None
    card: CardSpec | None = None
    train: TrainSpec | None = None  # curate train / compare (see "Fine-tuning and comparing")
    evals: EvalSpec | None = None
    compare: CompareSpec | None = None
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    # The folder the recipe's input paths are relative to (the recipe file's folder; the current one for a
    # recipe built in Python). Input paths are held absolute; outputs record them relative to this folder.
    _base_dir: str | None = PrivateAttr(default=None)

    @property
    def base_dir(self) -> str:
        return self._base_dir or os.getcwd()

    def with_base_dir(self, folder: str | os.PathLike) -> "Recipe":
        """Set the folder input paths are relative to, unless the recipe file already set it."""
        if self._base_dir is None:
            self._base_dir = os.path.abspath(folder)
        return self

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v):
        # the name becomes a folder (runs/NAME, data_cards/NAME): no separators, no "..", nothing hidden
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", v) or ".." in v:
            raise ValueError("a recipe name is letters, digits, '.', '_' and '-' (it names folders: runs/NAME)")
        return v

    @field_validator("sources")
    @classmethod
    def _some_sources(cls, v):
        if not v:
            raise ValueError("a recipe needs at least one source")
        return v

    @field_validator("steps", mode="before")
    @classmethod
    def _step_shape(cls, v):
        if v is None:
            return []
        if not isinstance(v, list):
            raise ValueError("steps is a list of `- step.name: {params}` entries")
        for i, entry in enumerate(v):
            if isinstance(entry, str):  # a bare name: a step with default parameters
                v[i] = entry = {entry: {}}
            if not isinstance(entry, dict) or len(entry) != 1:
                raise ValueError(f"steps[{i}] must be one `step.name: {{params}}` mapping, got {entry!r}")
        return v

    # -- derived -------------------------------------------------------------------------------

    def step_entries(self) -> list[tuple[str, str, dict]]:
        """(label, name, params) per step; a name used twice gets labels name, name#2, ..."""
        seen: dict[str, int] = {}
        out = []
        for entry in self.steps:
            (name, params), = entry.items()
            seen[name] = seen.get(name, 0) + 1
            label = name if seen[name] == 1 else f"{name}#{seen[name]}"
            out.append((label, name, params or {}))
        return out

    def output_dir(self) -> Path:
        return Path(self.outputs.dir or f"runs/{self.name}")

    def resolved(self) -> dict:
        """The recipe as data, input paths relative to `base_dir`: the same from any working directory."""
        raw = self.model_dump(mode="json", exclude={"executor"})
        _map_input_paths(raw, lambda p: Path(os.path.relpath(p, self.base_dir)).as_posix() if os.path.isabs(p) else p)
        return raw

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.resolved(), sort_keys=True).encode()).hexdigest()[:16]


# -- loading ---------------------------------------------------------------------------------------


def load_recipe(path: str | os.PathLike, overrides: list[str] | None = None) -> Recipe:
    """Read, override, validate. Every failure is a CurateError naming the file and field."""
    recipe = validate_recipe(load_raw(path, overrides), where=str(path))
    return recipe.with_base_dir(Path(path).parent)


def load_raw(path: str | os.PathLike, overrides: list[str] | None = None) -> dict:
    """The recipe as a plain dict, overrides applied. Input paths are made absolute: those in the file
    relative to the file's folder, those given with --set relative to the current directory."""
    path = Path(path)
    if not path.is_file():
        raise CurateError("recipe file not found", str(path))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise CurateError(f"not valid UTF-8 ({e.reason} at byte {e.start})", str(path)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise CurateError(f"not valid YAML: {getattr(e, 'problem', e)}", where) from None
    if not isinstance(raw, dict):
        raise CurateError("a recipe is a YAML mapping with at least `name` and `sources`", str(path))
    _resolve_input_paths(raw, path.parent)
    for item in overrides or []:
        apply_override(raw, item)
    _resolve_input_paths(raw, Path.cwd())
    return raw


def validate_recipe(raw: dict, where: str = "recipe") -> Recipe:
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as e:
        raise CurateError(format_errors(e, Recipe), where) from None
    _validate_steps(recipe, where)
    _validate_formats(recipe, where)
    _validate_executor_steps(recipe, where)
    return recipe


def _validate_executor_steps(recipe: Recipe, where: str) -> None:
    labels = [label for label, _, _ in recipe.step_entries()]
    problems = [f"executor.steps.{label}: no step {label!r} in this recipe{did_you_mean(label, labels)}"
                for label in recipe.executor.steps if label not in labels]
    if problems:
        raise CurateError("\n".join(problems), where)


def _validate_steps(recipe: Recipe, where: str) -> None:
    from curate.steps.registry import get_step

    problems = []
    for i, (label, name, params) in enumerate(recipe.step_entries()):
        loc = f"steps[{i}].{name}"
        try:
            cls = get_step(name, loc)
        except CurateError as e:
            problems.append(str(e))
            continue
        if not isinstance(params, dict):
            problems.append(f"{loc}: parameters must be a mapping, got {params!r}")
            continue
        try:
            cls.Params.model_validate(params)
        except ValidationError as e:
            problems.append(format_errors(e, cls.Params, prefix=loc))
    if problems:
        raise CurateError("\n".join(problems), where)


def _validate_formats(recipe: Recipe, where: str) -> None:
    from curate.sources.adapters import get_adapter

    problems = []
    for name, src in recipe.sources.items():
        if src.format != "auto":
            try:
                adapter = get_adapter(src.format, f"sources.{name}.format")
                adapter.Options.model_validate(src.options)
            except CurateError as e:
                problems.append(str(e))
            except ValidationError as e:
                problems.append(format_errors(e, adapter.Options, prefix=f"sources.{name}.options"))
    if problems:
        raise CurateError("\n".join(problems), where)


# -- overrides -------------------------------------------------------------------------------------


def apply_override(raw: dict, item: str) -> None:
    """`a.b.c=value` (value parsed as YAML); list items by index (`steps.2.filter.rules`); keys that
    contain dots themselves, like step names, are matched whole (`steps.0.select.random.rows`)."""
    if "=" not in item:
        raise CurateError(f"--set takes KEY=VALUE, got {item!r}")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    node: Any = raw
    i = 0
    while True:
        if isinstance(node, list):
            idx = _index(node, parts[i], ".".join(parts[: i + 1]))
            if i == len(parts) - 1:
                node[idx] = parsed
                return
            node, i = node[idx], i + 1
        elif isinstance(node, dict):
            # the longest run of parts that is an existing key, else one part (a new key)
            j = next((j for j in range(len(parts), i, -1) if ".".join(parts[i:j]) in node), i + 1)
            name = ".".join(parts[i:j])
            if j == len(parts):
                node[name] = parsed
                return
            if node.get(name) is None:
                node[name] = {}
            node, i = node[name], j
        else:
            raise CurateError(f"cannot set {key!r}: {'.'.join(parts[:i])} is not a mapping or list", "--set")


def _index(node: list, part: str, where: str) -> int:
    try:
        i = int(part)
        node[i]
        return i
    except (ValueError, IndexError):
        raise CurateError(f"{part!r} is not an index of a list of {len(node)} items", f"--set {where}") from None


def _resolve_input_paths(raw: dict, base: Path) -> None:
    """Make the recipe's relative input paths absolute, relative to `base`."""
    base = os.path.abspath(base)
    _map_input_paths(raw, lambda p: p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p)))


def _map_input_paths(raw: dict, fix) -> None:
    """Apply `fix` to every input path of a raw recipe: source files, mix sub-recipes, the template file."""

    def one(p):
        return p if not isinstance(p, str) or p.startswith(("http://", "https://")) else fix(p)

    for src in (raw.get("sources") or {}).values():
        if isinstance(src, dict) and src.get("path") is not None:
            src["path"] = [one(p) for p in src["path"]] if isinstance(src["path"], list) else one(src["path"])
    mix = raw.get("mix")
    if isinstance(mix, dict):
        for comp in (mix.get("components") or {}).values():
            if isinstance(comp, dict) and comp.get("recipe"):
                comp["recipe"] = one(comp["recipe"])
    tpl = raw.get("template")
    if isinstance(tpl, dict) and tpl.get("jinja_file"):
        tpl["jinja_file"] = one(tpl["jinja_file"])
