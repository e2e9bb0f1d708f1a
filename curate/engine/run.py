"""The engine's run of a recipe: load the sources into the row store, run the steps (cached one by one),
draw the matched random baseline, template, and write the run folder.

Steps are planned into passes: consecutive row-local steps whose results are not cached run together, part
by part, on the executor; a global step first gets its keys (computed in the pass before it) and the columns
it reads. Every result is cached as what the step adds (curate.engine.passes). A `finish` hook may replace the
rows after the steps (the mix does: curate.mix); the engine itself knows no feature.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa

from curate import __version__
from curate.atomic import work_folder
from curate.cache import StepCache, code_token
from curate.engine import load as loading
from curate.engine.columns import check_columns
from curate.engine.executor import LocalExecutor
from curate.engine.outputs import (DataWriter, change_part, change_tasks, output_schema, render_part, render_tasks,
                                   rows_of, write_rejects)
from curate.engine.passes import StepRun, Storage, apply_result, global_step, read_result, row_pass
from curate.engine.store import ROW, RowStore
from curate.engine.worker import StepSpec
from curate.errors import CurateError
from curate.faults import fault_point
from curate.io import write_json_atomic
from curate.ledger import Ledger, reason_group
from curate.steps.registry import get_step
from curate.runfolder import FORMAT_VERSION, MANIFEST, Carried, check_output_dir, replace_run_folder, run_folder_lock
from curate.seeds import derive_seed
from curate.steps.base import Budget, GlobalFilter

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
    index: int = 0
    total: int = 0

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
        if not self.carried["removed"]:
            return None
        return (f"removed {', '.join(self.carried['removed'])} of the previous run in {self.out_dir}: "
                "the data changed, so those results no longer apply")


@dataclass
class Finished:
    """What a `finish` hook made of the curated rows (the mix): new rows and their ledger entries."""

    rows: Iterable[pa.Table]
    dropped: list[dict]  # ledger entries of rows the hook left out
    rows_from_outside: int = 0  # rows read from elsewhere (other runs)
    repeats: int = 0  # rows written more than once
    manifest: dict = field(default_factory=dict)  # what the manifest records under the hook's name
    name: str = "mix"


def run(recipe, reporter: Reporter | None = None, use_cache: bool | None = None, executor=None,
        finish: Callable[[Callable[[], Iterator[pa.Table]]], Finished] | None = None) -> RunResult:
    """Run `recipe` and write its run folder (its input paths are relative to `recipe.base_dir`)."""
    reporter = reporter or Reporter()
    check_columns(recipe)  # before any row is read: a filter on a column nothing adds fails now, not in an hour
    out_dir = check_output_dir(recipe.output_dir(), recipe)
    with run_folder_lock(out_dir) as recovered:  # a second run on the same folder stops here, before any work
        for message in recovered:
            reporter.warning(message)
        own = executor is None
        executor = executor or executor_for(recipe)
        try:
            with work_folder(out_dir) as work:  # the rows of a run without the cache, and scratch files
                return _Run(recipe, reporter, use_cache, executor, work, out_dir, finish).go()
        finally:
            if own:
                executor.close()


def executor_for(recipe):
    spec = recipe.executor
    if spec.kind == "ray":
        from curate.engine.ray_executor import RayExecutor

        return RayExecutor(spec)
    return LocalExecutor(spec.workers)


class _Run:
    def __init__(self, recipe, reporter, use_cache, executor, work, out_dir, finish):
        self.recipe, self.reporter, self.executor, self.work, self.out_dir = recipe, reporter, executor, work, out_dir
        self.finish = finish
        self.use_cache = recipe.cache.enabled if use_cache is None else use_cache
        self.warnings: list[str] = []
        cache = StepCache(recipe.cache.dir, self.warn) if self.use_cache else None
        if cache is not None:
            cache.remove_stale()
        self.storage = Storage(cache, work)
        self.timings: dict = {"steps": {}}
        self.started = time.perf_counter()

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.reporter.warning(message)

    def go(self) -> RunResult:
        if "datasets" in sys.modules:  # imported by the caller: its bars are noise here (else see quiet_datasets)
            sys.modules["datasets"].disable_progress_bars()
        with ExitStack() as locks:
            t = time.perf_counter()
            store, loaded, key = self.load(locks)
            self.timings["load_s"] = round(time.perf_counter() - t, 3)
            runs = self.plan(key)
            self.execute(store, runs, locks)
            return self.write(store, loaded, runs)

    # -- 1. sources ----------------------------------------------------------------------------------

    def load(self, locks: ExitStack) -> tuple[RowStore, dict, str]:
        recipe = self.recipe
        fingerprint = loading.input_fingerprint(recipe)
        sources = recipe.resolved()["sources"]
        if fingerprint is not None:
            key = _hash(["load", __version__, _load_code(), sources, fingerprint, recipe.executor.part_rows])
            locks.enter_context(self.storage.lock(key))
            found = self.storage.lookup(key, lambda f: (f, loading.read_loaded(f)))
            if found is not None:
                folder, loaded = found
                for name in recipe.sources:
                    self.reporter.loading(name)
                return loading.store_of(folder, loaded), {**loaded, "folder": folder}, key
            folder = self.storage.begin(key)
            try:
                loaded = loading.load_sources(recipe, folder, self.reporter, self.executor)
                folder = self.storage.commit(key, folder)
            except BaseException:
                self.storage.abort(folder)
                raise
            return loading.store_of(folder, loaded), {**loaded, "folder": folder}, key
        folder = self.work / "load"
        loaded = loading.load_sources(recipe, folder, self.reporter, self.executor)
        key = _hash(["load", __version__, _load_code(), sources, loaded["sources"], recipe.executor.part_rows])
        return loading.store_of(folder, loaded), {**loaded, "folder": folder}, key

    # -- 2. steps ------------------------------------------------------------------------------------

    def plan(self, key: str) -> list[StepRun]:
        recipe, runs = self.recipe, []
        for i, (label, name, raw) in enumerate(recipe.step_entries()):
            cls = get_step(name)
            params = cls.Params.model_validate(raw)
            seed = derive_seed(recipe.seed, i, label)
            key = _hash([key, name, params.model_dump(mode="json"), seed, cls.cache_token(params, recipe.base_dir),
                         code_token(cls)])
            kinds = tuple(sorted((n, s.kind) for n, s in recipe.sources.items()))
            key = _hash([key, kinds]) if any(k != "text" for _, k in kinds) else key
            spec = StepSpec(i, name, params.model_dump_json(), label, f"steps[{i}].{name}", seed, recipe.base_dir, key,
                            kinds)
            runs.append(StepRun(spec, spec.build(), key))
        return runs

    def execute(self, store: RowStore, runs: list[StepRun], locks: ExitStack) -> None:
        pending: list[StepRun] = []
        total = len(runs)
        found: dict[int, Path | None] = {}  # step index -> its cached result (None: to compute)
        keys: dict = {}

        def look(run: StepRun) -> Path | None:
            if run.index not in found:
                locks.enter_context(self.storage.lock(run.key))
                found[run.index] = self.storage.lookup(run.key, lambda f: f)
            return found[run.index]

        for k, run in enumerate(runs):
            self.reporter.step_started(run.index, total, run.spec.label)
            cached = look(run)
            if cached is None and run.step.scope == "row":
                pending.append(run)
                continue
            if cached is None and _has_keys(run.step) and run.index not in keys:
                # the keys of the global steps right after this one too: one pass over the rows for all
                key_runs = [run]
                for later in runs[k + 1:]:  # until a step that changes rows rather than drops them
                    if later.step.scope != "global" or later.makes_layer or look(later) is not None:
                        break
                    if _has_keys(later.step):
                        key_runs.append(later)
                keys.update(self.flush(store, pending, key_runs))
            else:
                self.flush(store, pending, [])
            pending = []
            t = time.perf_counter()
            if cached is not None:
                try:
                    notes, layer, drops = read_result(cached, run, store)
                except (ValueError, KeyError, OSError) as e:
                    raise CurateError(f"the cached result {cached} does not fit this run ({e}); delete the cache "
                                      f"folder {self.recipe.cache.dir} and run again") from None
                apply_result(run, store, notes, layer, drops)
                run.cached, run.folder = True, cached
            else:
                global_step(store, run, keys.pop(run.index, None), self.storage, self.executor)
            run.seconds = run.seconds or time.perf_counter() - t
            self.report(run, total)
        self.flush(store, pending, [])

    def flush(self, store: RowStore, pending: list[StepRun], key_runs: list[StepRun]) -> dict:
        """Run the pending row-local steps (in groups that may or may not run in parallel), computing the
        keys of `key_runs` with the last group."""
        keys: dict = {}
        groups: list[list[StepRun]] = []
        for run in pending:
            if groups and groups[-1][0].step.parallel() == run.step.parallel():
                groups[-1].append(run)
            else:
                groups.append([run])
        if not groups and key_runs:
            groups = [[]]
        from curate.progress import progress

        for k, group in enumerate(groups):
            last = k == len(groups) - 1
            labels = ", ".join(r.spec.label for r in group) or f"keys of {key_runs[0].spec.label}"
            with progress(int(store.alive.sum()), labels, min_rows=20_000) as advance:
                keys.update(row_pass(store, group, key_runs if last else [], self.storage, self.executor, advance))
            for run in group:
                self.report(run, len(self.recipe.steps))
        return keys

    def report(self, run: StepRun, total: int) -> None:
        grouped: Counter = Counter()
        for reason, n in run.reasons.items():
            grouped[reason_group(reason)] += n
        report = StepReport(run.spec.label, run.spec.name, run.step.role,
                            json.loads(run.step.params.model_dump_json()), run.rows_in, run.rows_out,
                            dict(sorted(grouped.items(), key=lambda kv: (-kv[1], kv[0]))), run.notes,
                            round(run.seconds, 3), run.cached, run.index, total)
        run.report = report
        self.timings["steps"][run.spec.label] = {"seconds": report.seconds, "cached": report.cached}
        for name, cpu in (("parts_cpu_s", run.parts_cpu), ("global_cpu_s", run.global_cpu)):
            if cpu:  # where the step's CPU time went: spread over part tasks, or one decision on the driver
                self.timings["steps"][run.spec.label][name] = round(cpu, 3)
        self.reporter.step_finished(report)

    # -- 3. outputs ----------------------------------------------------------------------------------

    def write(self, store: RowStore, loaded: dict, runs: list[StepRun]) -> RunResult:
        recipe = self.recipe
        sources_info = loaded["sources"]
        rows_in = loaded["rows_in"]
        reports = [run.report for run in sorted(runs, key=lambda r: r.index)]
        selectors = [run for run in runs if run.step.role == "select"]
        baseline_mask, baseline_info = None, None
        if recipe.outputs.random_baseline and selectors:
            baseline_mask, baseline_info = self.baseline(store, selectors[-1])

        t = time.perf_counter()
        template = recipe.template.model_dump_json() if recipe.template is not None else None
        jsonl = "jsonl" in recipe.outputs.formats
        templater = None
        if template is not None:
            from curate.templates.render import cached_templater

            templater = cached_templater(template, recipe.base_dir)  # checks the template before any row

        def rendered(mask, upto=None):
            """(rows, their JSON Lines) part by part, templated on the executor."""
            tasks, _ = render_tasks(store, mask, upto, template, recipe.base_dir, jsonl)
            yield from self.executor.map(render_part, tasks, n=len(tasks))

        finished = None
        if self.finish is not None:
            finished = self.finish(lambda: rows_of(store, store.alive))
            rows_in += finished.rows_from_outside
            main_rows = ((templater.apply(b) if templater is not None else b, None) for b in finished.rows)
        else:
            main_rows = rendered(store.alive)
        schema = _with_template(output_schema(store), templater)
        labels = {run.index: run.spec.label for run in runs}
        drop_folders = {run.index: run.folder for run in runs if not run.makes_layer and run.rows_out < run.rows_in}
        fp = recipe.fingerprint()
        with replace_run_folder(self.out_dir, recipe) as (tmp, carried):
            data = DataWriter(tmp, "data", recipe.outputs.formats, fp)
            for batch, lines in main_rows:
                data.write(batch, lines)
            files = data.close(schema)
            if baseline_mask is not None:
                base = DataWriter(tmp, "baseline_random", recipe.outputs.formats, fp + "-baseline")
                for batch, lines in rendered(baseline_mask, selectors[-1].index):
                    base.write(batch, lines)
                files += base.close(_with_template(output_schema(store, selectors[-1].index), templater))
            self.timings["template_and_write_s"] = round(time.perf_counter() - t, 3)
            fault_point("write")
            dropped = write_rejects(tmp / "rejects.jsonl", store, labels, drop_folders,
                                    loading.skipped_entries(loaded["folder"]), finished.dropped if finished else [],
                                    self.executor, self.work)
            files.append("rejects.jsonl")
            transforms = [(run.index, run.spec.label) for run in runs if run.step.role == "transform"]
            if transforms and finished is None:  # before and after, for the kept rows transforms changed
                tasks = change_tasks(store, transforms)
                with open(tmp / "changes.jsonl", "w", encoding="utf-8", newline="\n") as f:
                    for text in self.executor.map(change_part, tasks, n=len(tasks)):
                        f.write(text)
                files.append("changes.jsonl")
            repeats = finished.repeats if finished else 0
            Ledger.check_identity(rows_in, data.rows - repeats, dropped)
            if data.rows == 0:
                self.warn("no rows are left: the outputs are empty; `curate inspect --dropped` shows why rows went")
            for name, info in sources_info.items():
                info["rows_out"] = data.sources.get(name, 0)
            manifest = self.manifest(sources_info, reports, rows_in, data, dropped, baseline_info)
            if finished is not None:
                manifest[finished.name] = finished.manifest
                manifest["totals"]["repeats"] = repeats
            manifest["outputs"] = {"files": files, "reason_groups": "numbers in reasons are replaced by # when counted"}
            self.timings["total_s"] = round(time.perf_counter() - self.started, 3)
            manifest["executor"] = self.executor.describe()  # how it ran: not part of what it made
            manifest["timings"] = self.timings  # with `executor`, the part that differs between identical runs
            write_json_atomic(tmp / MANIFEST, manifest)
        return RunResult(self.out_dir, manifest, reports, carried, self.warnings)

    def baseline(self, store: RowStore, selector: StepRun) -> tuple[np.ndarray, dict]:
        """The matched random baseline: the same pool and budget as the last selector, seed + 1."""
        from curate.steps.select.random import random_subset

        p = selector.step.params
        pool = (store.dropped_at == -1) | (store.dropped_at >= selector.index)
        cols = ["id"] + ([p.token_column] if p.tokens is not None else [])
        parts = [store.view(i, upto=selector.index, mask=pool, columns=cols) for i in range(store.n_parts)
                 if pool[store.part_rows(i)].any()]
        table = pa.concat_tables(parts) if parts else None
        budget = Budget(tokens=p.tokens, token_column=p.token_column) if p.tokens is not None else \
            Budget(rows=max(selector.rows_out, 1))
        seed = selector.spec.seed + 1
        picked = sorted(random_subset(table.drop_columns([ROW]), budget, seed)) if table is not None else []
        mask = np.zeros(store.n_rows, dtype=bool)
        if picked:
            mask[table.column(ROW).to_numpy()[picked]] = True
        info = {"selector": selector.spec.label, "pool_rows": int(pool.sum()), "rows": len(picked),
                "budget": budget.model_dump(mode="json", exclude_none=True), "seed": seed}
        return mask, info

    def manifest(self, sources_info, reports, rows_in, data: DataWriter, dropped, baseline_info) -> dict:
        recipe = self.recipe
        load_drops = sum(s["rows_skipped"] for s in sources_info.values())
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
            "totals": {"rows_in": rows_in, "rows_out": data.rows, "dropped": dropped},
            "random_baseline": baseline_info,
            "columns": list(data.columns or []),
            "libraries": library_versions(),
        }


def _with_template(schema: pa.Schema, templater) -> pa.Schema:
    if templater is None:
        return schema
    from curate.templates.render import SPANS_TYPE

    return schema.append(pa.field("text", pa.string())).append(pa.field("assistant_spans", SPANS_TYPE))


def _has_keys(step) -> bool:
    """A global filter that computes per-row keys (the engine computes them in the pass before it)."""
    return isinstance(step, GlobalFilter) and step.needs_keys()


def _load_code() -> str:
    import curate.engine.load as module
    import curate.sources.adapters as adapters
    import curate.sources.files as files
    import curate.sources.load as reader

    return hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in (module, adapters, reader, files))).hexdigest()[:16]


def library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:24]
