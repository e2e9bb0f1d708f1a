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
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from curate import __version__
from curate.errors import CurateError
from curate.io import (FORMAT_VERSION, dumps, read_jsonl, save_arrow, staged_folder, write_dataset, write_json_atomic,
                       write_text_atomic)
from curate.ledger import Ledger, reason_group
from curate.recipe import Recipe
from curate.registry import get_step
from curate.steps.base import Budget, Drop, StepContext

LIBRARIES = ("datasets", "pyarrow", "pydantic", "transformers", "rensa", "py3langid", "jinja2", "numpy",
             "sentence-transformers", "scikit-learn", "torch")
MANIFEST = "manifest.json"


class Reporter:
    """Hooks the CLI uses to show progress; the default says nothing."""

    def loading(self, source: str) -> None: ...
    def step_started(self, index: int, total: int, label: str) -> None: ...
    def step_finished(self, report: "StepReport") -> None: ...


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
    carried: dict = field(default_factory=lambda: {"kept": [], "removed": []})

    def removed_note(self) -> str | None:
        """What the user should hear when a re-run removed results of the previous run (None if nothing)."""
        if not self.carried["removed"]:
            return None
        return (f"removed {', '.join(self.carried['removed'])} of the previous run in {self.out_dir}: "
                "the data changed, so those results no longer apply")


def run_recipe(recipe: Recipe, reporter: Reporter | None = None, use_cache: bool | None = None,
               recipe_dir: str = ".") -> RunResult:
    import datasets

    datasets.disable_progress_bars()  # curate reports its own progress; datasets' bars are noise here
    reporter = reporter or Reporter()
    use_cache = recipe.cache.enabled if use_cache is None else use_cache
    started = time.perf_counter()
    timings: dict = {"steps": {}}
    ledger = Ledger()

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
        key = _hash([key, name, params.model_dump(mode="json"), cls.cache_token(params, recipe_dir)])
        reporter.step_started(i, len(entries), label)
        t = time.perf_counter()
        rows_before = len(ds)
        pool = ds
        cached = _cache_load(recipe, key) if use_cache else None
        if cached is not None:
            ds, drops, notes = cached
        else:
            ds, drops, notes = _run_step(cls(params, ctx), ds)
        step_seconds = time.perf_counter() - t
        if use_cache and cached is None:
            _cache_store(recipe, key, ds, drops, notes)
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

        templater = Templater(recipe.template, base_dir=".")
        ds = templater.apply(ds)
        if baseline is not None:
            baseline = templater.apply(baseline)
    timings["template_s"] = round(time.perf_counter() - t, 3)

    # 6. nothing lost (a row the mix repeats is one row in, several out)
    repeats = mix_info["repeats"] if mix_info else 0
    Ledger.check_identity(rows_in, len(ds) - repeats, len(ledger))

    manifest = _manifest(recipe, sources_info, reports, rows_in, len(ds), len(ledger), baseline_info, ds)
    if mix_info is not None:
        manifest["mix"] = mix_info
        manifest["totals"]["repeats"] = repeats
    out_dir = recipe.output_dir()
    t = time.perf_counter()
    carried = _write_outputs(recipe, out_dir, ds, ledger, baseline, manifest, timings, started)
    if recipe.card is not None and recipe.card.write:
        from curate.card.writer import write_card

        write_card(out_dir, recipe.card)
    return RunResult(out_dir, manifest, reports, carried)


# -- sources ---------------------------------------------------------------------------------------


def _load_sources(recipe: Recipe, ledger: Ledger, reporter: Reporter):
    from datasets import Dataset

    from curate.sources.load import load_source

    rows, info, rows_in = [], {}, 0
    for name, src in recipe.sources.items():
        reporter.loading(name)
        loaded = load_source(name, src)
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
    return ds, drops, dict(step.ctx.notes)


def _drop_entries(ds, label: str, dropped: dict[int, Drop]) -> list[dict]:
    if not dropped:
        return []
    scratch = Ledger()
    order = sorted(dropped)
    for i, row in zip(order, ds.select(order).to_list()):  # one bulk conversion, not a row at a time
        scratch.drop(label, row, dropped[i])
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


def _cache_dir(recipe: Recipe, key: str) -> Path:
    return Path(recipe.cache.dir) / key


def _cache_load(recipe: Recipe, key: str):
    from datasets import Dataset

    d = _cache_dir(recipe, key)
    if not (d / "done").exists():
        return None
    ds = Dataset.from_file(str(d / "data.arrow"))  # memory-mapped, not read
    drops = read_jsonl(d / "drops.jsonl")
    notes = json.loads((d / "notes.json").read_text(encoding="utf-8"))
    return ds, drops, notes


def _cache_store(recipe: Recipe, key: str, ds, drops, notes) -> None:
    d = _cache_dir(recipe, key)
    d.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=d.parent, prefix=f".{key}.", suffix=".tmp"))
    try:
        save_arrow(ds, tmp / "data.arrow")
        write_text_atomic(tmp / "drops.jsonl", (dumps(e) for e in drops))
        write_json_atomic(tmp / "notes.json", notes)
        (tmp / "done").write_text("ok\n")
        if d.exists():
            shutil.rmtree(d)
        tmp.rename(d)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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
    """Write everything into a fresh folder, then swap it in: a run leaves a whole output or none.

    What later commands wrote into the previous run folder (train/, compare/, report.html, ...) is kept when
    the new data files are byte-identical to the old ones, and removed with the old folder when they are not
    (results of training on other data would be stale). Returns {"kept": [...], "removed": [...]}."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).exists():
        raise CurateError(f"{out_dir} exists and is not a curate run folder (no {MANIFEST}); choose another outputs.dir",
                          "outputs.dir")
    carried = {"kept": [], "removed": []}
    with staged_folder(out_dir, before_discard=lambda old, new: carried.update(_carry_results(old, new))) as tmp:
        fp = recipe.fingerprint()
        files = write_dataset(ds, tmp, "data", recipe.outputs.formats, fp)
        if baseline is not None:
            files += write_dataset(baseline, tmp, "baseline_random", recipe.outputs.formats, fp + "-baseline")
        write_text_atomic(tmp / "rejects.jsonl", (dumps(e) for e in ledger.rejects))
        files.append("rejects.jsonl")
        manifest["outputs"] = {"files": files, "reason_groups": "numbers in reasons are replaced by # when counted"}
        timings["total_s"] = round(time.perf_counter() - started, 3)
        manifest["timings"] = timings  # the one part of the manifest that differs between identical runs
        write_json_atomic(tmp / MANIFEST, manifest)
    return carried


# what `curate run` itself writes: never carried over from an earlier run (a dropped format must go)
RUN_OWNED = re.compile(r"^(manifest\.json|rejects\.jsonl|(data|baseline_random)(\.jsonl|\.parquet)?)$")


def _carry_results(old: Path, new: Path) -> dict:
    """Move what later commands wrote into the old run folder over to the new one when the data is unchanged.
    Hidden names (another command's staging folders) are never carried."""
    extra = sorted(p.name for p in old.iterdir() if not RUN_OWNED.match(p.name) and not p.name.startswith("."))
    if not extra:
        return {"kept": [], "removed": []}
    names = _data_names(new)
    if data_digest(old, names) != data_digest(new, names):
        return {"kept": [], "removed": extra}
    for name in extra:
        (old / name).rename(new / name)
    return {"kept": extra, "removed": []}


def _data_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if RUN_OWNED.match(p.name) and p.name.startswith(("data", "baseline")))


def data_digest(run_dir: Path, names: list[str] | None = None) -> str | None:
    """sha256 of a run folder's data files (`data.*`, `baseline_random.*`, or those `names`), None when one is
    missing. An Arrow folder's state.json is left out: it holds the recipe's fingerprint, which changes with
    keys that change no row (train:, description, ...)."""
    run_dir = Path(run_dir)
    digest = hashlib.sha256()
    for name in names if names is not None else _data_names(run_dir):
        path = run_dir / name
        if not path.exists():
            return None
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != "state.json") if path.is_dir() else [path]
        for f in files:
            digest.update(f.relative_to(run_dir).as_posix().encode() + b"\0")
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


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
