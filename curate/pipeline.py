"""Run a recipe: load sources, run the steps in order, template, write outputs and the manifest.

The flow goes one way: sources -> steps (transform, score, filter, select) -> template -> outputs.
Every step's result is cached under a key made of the inputs' fingerprints and every step up to and
including it, so re-running after changing a late step reuses the earlier steps' results.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from curate import __version__
from curate.cache import StepCache, code_token
from curate.faults import fault_point
from curate.io import dumps, read_jsonl, row_for_json, save_arrow, write_dataset, write_json_atomic, write_text_atomic
from curate.ledger import Ledger, reason_group
from curate.recipe import Recipe
from curate.registry import get_step
from curate.runfolder import (FORMAT_VERSION, MANIFEST, Carried, check_output_dir, data_digest,  # noqa: F401
                              replace_run_folder, run_folder_lock)
from curate.steps.base import Budget, Drop, StepContext

LIBRARIES = ("datasets", "pyarrow", "pydantic", "transformers", "rensa", "py3langid", "jinja2", "numpy",
             "sentence-transformers", "scikit-learn", "torch")


class Reporter:
    """Hooks the CLI uses to show progress; the default says nothing."""

    def loading(self, source: str) -> None: ...
    def step_started(self, index: int, total: int, label: str) -> None: ...
    def step_finished(self, report: "StepReport") -> None: ...
    def warning(self, message: str) -> None: ...


@dataclass
class StepReport:
    label: str
    name: str
    role: str
    params: dict
    rows_in: int
    rows_out: int
    dropped_by_reason: dict
    notes: dict
    seconds: float = 0.0
    cached: bool = False

    def manifest_entry(self) -> dict:
        return {
            "label": self.label, "name": self.name, "role": self.role, "params": self.params,
            "rows_in": self.rows_in, "rows_out": self.rows_out, "dropped": self.rows_in - self.rows_out,
            "dropped_by_reason": self.dropped_by_reason, "notes": self.notes,
        }


@dataclass
class RunResult:
    out_dir: Path
    manifest: dict
    steps: list[StepReport] = field(default_factory=list)
    # what later commands had written into the previous run folder: kept (same data) or removed (data changed)
    carried: dict = field(default_factory=Carried)
    warnings: list[str] = field(default_factory=list)

    def removed_note(self) -> str | None:
        """What the user should hear when a re-run removed results of the previous run (None if nothing)."""
        if not self.carried['removed']:
            return None
        return (f"removed {', '.join(self.carried['removed'])} of the previous run in {self.out_dir}: "
                "the data changed, so those results no longer apply")


def run_recipe(recipe: Recipe, reporter: Reporter | None = None, use_cache: bool | None = None,
               recipe_dir: str | None = None) -> RunResult:
    """Run `recipe` and write its run folder. `recipe_dir` is the folder its relative paths start from
    (default: the recipe file's folder; the current one for a recipe built in Python)."""
    if recipe_dir is not None:
        recipe.with_base_dir(recipe_dir)
    out_dir = check_output_dir(recipe.output_dir(), recipe)
    reporter = reporter or Reporter()
    with run_folder_lock(out_dir) as recovered:  # a second run on the same folder stops here, before any work
        for message in recovered:
            reporter.warning(message)
        return _run(recipe, reporter, use_cache, recipe.base_dir, out_dir)


def _run(recipe: Recipe, reporter: Reporter, use_cache: bool | None, recipe_dir: str, out_dir: Path) -> RunResult:
    import datasets

    datasets.disable_progress_bars()  # curate reports its own progress; datasets' bars are noise here
    use_cache = recipe.cache.enabled if use_cache is None else use_cache
    started = time.perf_counter()
    timings: dict = {"steps": {}}
    ledger = Ledger()
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        reporter.warning(message)

    cache = StepCache(recipe.cache.dir, warn)
    if use_cache:
        cache.remove_stale()

    # 1. sources
    t = time.perf_counter()
    ds, sources_info, rows_in = _load_sources(recipe, ledger, reporter)
    timings["load_s"] = round(time.perf_counter() - t, 3)

    # 2. steps, each cached under the key of everything before it
    key = _hash(["curate", __version__, recipe.seed, recipe.model_dump(mode="json")["sources"], sources_info])
    reports: list[StepReport] = []
    last_selection = None  # (pool, params, rows chosen, ctx) of the last selector, for the random baseline
    entries = recipe.step_entries()
    for i, (label, name, raw_params) in enumerate(entries):
        cls = get_step(name)
        params = cls.Params.model_validate(raw_params)
        ctx = StepContext(label=label, where=f"steps[{i}].{name}", seed=_step_seed(recipe.seed, i, label),
                          recipe_dir=recipe_dir)
        key = _hash([key, name, params.model_dump(mode="json"), cls.cache_token(params, recipe_dir), code_token(cls)])
        reporter.step_started(i, len(entries), label)
        t = time.perf_counter()
        rows_before = len(ds)
        pool = ds
        with cache.entry(key) if use_cache else _nothing():
            cached = cache.load(key, _read_entry) if use_cache else None
            if cached is not None:
                ds, drops, notes = cached
            else:
                ds, drops, notes = _run_step(cls(params, ctx), ds)
            step_seconds = time.perf_counter() - t
            if use_cache and cached is None:
                cache.store(key, lambda folder: _write_entry(folder, ds, drops, notes))
        if cls.role == "select":
            last_selection = (pool, params, len(ds), ctx)
        ledger.extend(drops)
        report = StepReport(label, name, cls.role, params.model_dump(mode="json"), rows_before, len(ds),
                            ledger.counts_by_reason(label), notes, round(step_seconds, 3), cached is not None)
        reports.append(report)
        timings["steps"][label] = {"seconds": report.seconds, "cached": report.cached,
                                   "with_cache_io": round(time.perf_counter() - t, 3)}
        reporter.step_finished(report)

    # 3. the mix: components at explicit ratios (after the steps, before the template)
    mix_info = None
    if recipe.mix is not None:
        from curate.mix import apply_mix, component_datasets

        t = time.perf_counter()
        rows_before_mix = len(ds)
        components, outside, unused = component_datasets(recipe.mix, ds, recipe, recipe_dir)
        rows_in += outside
        ledger.extend(unused)
        ds, mix_drops, mix_info = apply_mix(recipe.mix, components, recipe.seed)
        ledger.extend(mix_drops)
        mix_info["rows_in"] = rows_before_mix + outside
        mix_info["rows_from_outside"] = outside
        mix_info["dropped"] = len(unused) + len(mix_drops)
        timings["mix_s"] = round(time.perf_counter() - t, 3)

    # 4. the matched random baseline: same pool, same budget as the last selector
    baseline, baseline_info = None, None
    if recipe.outputs.random_baseline and last_selection is not None:
        baseline, baseline_info = _random_baseline(*last_selection)

    # 5. template
    t = time.perf_counter()
    if recipe.template is not None:
        from curate.templates.render import Templater

        templater = Templater(recipe.template, base_dir=recipe_dir)
        ds = templater.apply(ds)
        if baseline is not None:
            baseline = templater.apply(baseline)
    timings["template_s"] = round(time.perf_counter() - t, 3)
    if len(ds) == 0:
        warn("no rows are left: the outputs are empty; `curate inspect --dropped` shows why rows went")

    # 6. nothing lost (a row the mix repeats is one row in, several out)
    repeats = mix_info["repeats"] if mix_info else 0
    Ledger.check_identity(rows_in, len(ds) - repeats, len(ledger))

    manifest = _manifest(recipe, sources_info, reports, rows_in, len(ds), len(ledger), baseline_info, ds)
    if mix_info is not None:
        manifest["mix"] = mix_info
        manifest["totals"]["repeats"] = repeats
    carried = _write_outputs(recipe, out_dir, ds, ledger, baseline, manifest, timings, started)
    if recipe.card is not None and recipe.card.write:
        from curate.card.writer import write_card

        write_card(out_dir, recipe.card)
    return RunResult(out_dir, manifest, reports, carried, warnings)


@contextmanager
def _nothing():
    yield


# -- sources ---------------------------------------------------------------------------------------


def _load_sources(recipe: Recipe, ledger: Ledger, reporter: Reporter):
    from datasets import Dataset

    from curate.sources.load import load_source

    rows, info, rows_in = [], {}, 0
    for name, src in recipe.sources.items():
        reporter.loading(name)
        loaded = load_source(name, src, recipe.base_dir)
        for s in loaded.skipped:
            ledger.skip(name, s.where, s.reason, s.raw)
        rows += loaded.rows
        rows_in += loaded.rows_in
        info[name] = {"adapter": loaded.adapter, "inputs": loaded.inputs, "rows_read": loaded.rows_in,
                      "rows_skipped": len(loaded.skipped), "license": src.license or "unknown"}
    return Dataset.from_list(rows), info, rows_in


# -- one step --------------------------------------------------------------------------------------


def _run_step(step, ds):
    """Apply one step by its role. Returns (dataset, ledger entries, notes)."""
    role, label, n = step.role, step.ctx.label, len(ds)
    drops: list[dict] = []
    if role == "transform":
        ds = step.transform(ds)
        if len(ds) != n:
            raise RuntimeError(f"{label}: a transform changed the number of rows ({n} -> {len(ds)})")
    elif role == "score":
        columns = step.score(ds)
        nan_counts = {}
        for col, values in columns.items():
            if len(values) != n:
                raise RuntimeError(f"{label}: column {col} has {len(values)} values for {n} rows")
            if col in ds.column_names:  # re-scoring replaces the old column
                ds = ds.remove_columns(col)
            ds = ds.add_column(col, values)
            missing = sum(1 for v in values if isinstance(v, float) and math.isnan(v))
            if missing:
                nan_counts[col] = missing
        if nan_counts:
            step.ctx.notes["unscored_rows"] = nan_counts
    elif role == "filter":
        decisions = step.decide(ds)
        if len(decisions) != n:
            raise RuntimeError(f"{label}: {len(decisions)} decisions for {n} rows")
        keep = [i for i, d in enumerate(decisions) if d is None]
        drops = _drop_entries(ds, label, {i: d for i, d in enumerate(decisions) if d is not None})
        ds = ds.select(keep)
    elif role == "select":
        chosen = sorted(set(step.select(ds)))
        if chosen and not (0 <= chosen[0] and chosen[-1] < n):
            raise RuntimeError(f"{label}: selected an index out of range")
        chosen_set = set(chosen)
        reason = Drop(reason=f"not selected by {label} ({_budget_text(step.params)})")
        drops = _drop_entries(ds, label, {i: reason for i in range(n) if i not in chosen_set})
        ds = ds.select(chosen)
    else:
        raise RuntimeError(f"unknown role {role!r}")
    fault_point("step")
    return ds, drops, dict(step.ctx.notes)


def _drop_entries(ds, label: str, dropped: dict[int, Drop]) -> list[dict]:
    if not dropped:
        return []
    scratch = Ledger()
    order = sorted(dropped)
    for i, row in zip(order, ds.select(order).to_list()):  # one bulk conversion, not a row at a time
        scratch.drop(label, row_for_json(row), dropped[i])
    return scratch.rejects


def _budget_text(params) -> str:
    rows, tokens = getattr(params, "rows", None), getattr(params, "tokens", None)
    return f"budget {rows} rows" if rows is not None else f"budget {tokens} tokens" if tokens is not None else "no budget"


def _step_seed(seed: int, index: int, label: str) -> int:
    return int(hashlib.sha256(f"{seed}:{index}:{label}".encode()).hexdigest()[:8], 16)


# -- random baseline -------------------------------------------------------------------------------


def _random_baseline(pool, params, n_chosen, ctx):
    from curate.steps.select.random import random_subset

    tokens = getattr(params, "tokens", None)
    token_column = getattr(params, "token_column", "n_tokens")
    budget = Budget(tokens=tokens, token_column=token_column) if tokens is not None else Budget(rows=max(n_chosen, 1))
    picked = sorted(random_subset(pool, budget, ctx.seed + 1))
    info = {"selector": ctx.label, "pool_rows": len(pool), "rows": len(picked),
            "budget": budget.model_dump(mode="json", exclude_none=True), "seed": ctx.seed + 1}
    return pool.select(picked), info


# -- cache -----------------------------------------------------------------------------------------


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _read_entry(folder: Path):
    from datasets import Dataset

    ds = Dataset.from_file(str(folder / "data.arrow"))  # memory-mapped, not read
    drops = read_jsonl(folder / "drops.jsonl")
    notes = json.loads((folder / "notes.json").read_text(encoding="utf-8"))
    return ds, drops, notes


def _write_entry(folder: Path, ds, drops, notes) -> None:
    save_arrow(ds, folder / "data.arrow")
    write_text_atomic(folder / "drops.jsonl", (dumps(e) for e in drops))
    write_json_atomic(folder / "notes.json", notes)


# -- outputs ---------------------------------------------------------------------------------------


def _manifest(recipe, sources_info, reports, rows_in, rows_out, dropped, baseline_info, ds) -> dict:
    load_drops = sum(s["rows_skipped"] for s in sources_info.values())
    per_source_out: dict[str, int] = {}
    for s in ds["source"]:
        per_source_out[s] = per_source_out.get(s, 0) + 1
    for name, info in sources_info.items():
        info["rows_out"] = per_source_out.get(name, 0)
    return {
        "format_version": FORMAT_VERSION,
        "curate_version": __version__,
        "name": recipe.name,
        "recipe_hash": recipe.fingerprint(),
        "seed": recipe.seed,
        "recipe": recipe.resolved(),
        "sources": sources_info,
        "steps": [r.manifest_entry() for r in reports],
        "load": {"rows_read": sum(s["rows_read"] for s in sources_info.values()), "rows_skipped": load_drops},
        "totals": {"rows_in": rows_in, "rows_out": rows_out, "dropped": dropped},
        "random_baseline": baseline_info,
        "columns": list(ds.column_names),
        "libraries": _library_versions(),
    }


def _library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _write_outputs(recipe, out_dir: Path, ds, ledger, baseline, manifest, timings, started) -> dict:
    """Write everything into a fresh folder, then swap it in whole (see curate.runfolder)."""
    with replace_run_folder(out_dir, recipe) as (tmp, carried):
        fp = recipe.fingerprint()
        files = write_dataset(ds, tmp, "data", recipe.outputs.formats, fp)
        if baseline is not None:
            files += write_dataset(baseline, tmp, "baseline_random", recipe.outputs.formats, fp + "-baseline")
        fault_point("write")
        write_text_atomic(tmp / "rejects.jsonl", (dumps(e) for e in ledger.rejects))
        files.append("rejects.jsonl")
        manifest["outputs"] = {"files": files, "reason_groups": "numbers in reasons are replaced by # when counted"}
        timings["total_s"] = round(time.perf_counter() - started, 3)
        manifest["timings"] = timings  # the one part of the manifest that differs between identical runs
        write_json_atomic(tmp / MANIFEST, manifest)
    return carried


def funnel_rows(manifest: dict) -> list[tuple[str, int, int, int, str]]:
    """(step, rows in, rows out, dropped, top reasons) for the funnel table and the data card."""
    read = manifest["load"]["rows_read"]
    out = [("load", read, read - manifest["load"]["rows_skipped"],
            manifest["load"]["rows_skipped"], "malformed rows skipped" if manifest["load"]["rows_skipped"] else "")]
    for s in manifest["steps"]:
        top = ", ".join(f"{r} ({c})" for r, c in list(s["dropped_by_reason"].items())[:3])
        out.append((s["label"], s["rows_in"], s["rows_out"], s["dropped"], top))
    if manifest.get("mix"):
        m = manifest["mix"]
        parts = ", ".join(f"{n} {v['realised']['rows']}" for n, v in m["components"].items())
        out.append(("mix", m["rows_in"], m["realised"]["rows"], m["dropped"],
                    f"{parts}" + (f"; {m['repeats']} repeated rows" if m["repeats"] else "")))
    return out


__all__ = ["run_recipe", "RunResult", "Reporter", "StepReport", "funnel_rows", "reason_group", "MANIFEST"]
