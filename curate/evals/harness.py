"""`kind: lm_eval`: EleutherAI's lm-evaluation-harness as an evaluation backend.

```yaml
evals:
  tasks:
    arc:  {kind: lm_eval, tasks: [curate_arc_easy], n: null, role: general}   # every question
    mmlu: {kind: lm_eval, tasks: [curate_mmlu], limit: 200}                 # the first 200
    ifeval: {kind: lm_eval, tasks: [ifeval]}                                # any harness task (needs its data)
    mine: {kind: lm_eval, tasks: [path/to/task.yaml]}                       # or a task YAML
```

The model object that curate trained (or loaded) is wrapped in lm-eval's `HFLM` (`pretrained=model,
tokenizer=tokenizer`: lm-eval's documented way to evaluate a model already in memory) and run through
`lm_eval.simple_evaluate` with the chat template applied (`chat_template: true`), `log_samples` on and no
bootstrap (curate's paired statistics use the per-item samples instead). `n` evaluates a seeded sample of each
task's documents (lm-eval's `samples=`: the same documents for every model), `limit` the first N (lm-eval's
`limit`); `num_fewshot` overrides the task's.

Task names: curate ships task YAMLs in `curate/evals/harness_tasks/` that read the local copies in the
`../shared/data` layout (`dataset_path: json` / `csv` with `data_files`): `curate_arc_easy` (ARC-Easy validation,
lm-eval's `arc_easy` prompt), `curate_mmlu` (MMLU validation, every subject in one task, lm-eval's `mmlu`
prompt) and `curate_gsm8k` (GSM8K, lm-eval's `gsm8k` prompt and filters; the local copy has only the train
split). `data_dir` replaces their `../shared/data` prefix. Any other name is looked up among lm-eval's own tasks
(which load their data from the Hub: with network only), and a path ending in .yaml is a task file.

Metrics: `<entry>.<metric>` (one task) or `<entry>.<task>.<metric>` (several), with `_<filter>` appended when the
task's filter is not `none` (gsm8k: `exact_match_strict-match`, `exact_match_flexible-extract`). lm-eval has no
MAP@3: for multiple-choice tasks curate adds `map@3`, ranked from the per-choice log-likelihoods lm-eval logs
(the same ranking as curate's own multiple-choice scorer: ties go to the earlier option). Per-item values (ids
`<task>:<doc_id>`) of every numeric per-sample metric are kept for the paired statistics.
"""

from __future__ import annotations

import copy
import logging
import random
from pathlib import Path

from curate.errors import CurateError, did_you_mean

TASKS_DIR = Path(__file__).resolve().parent / "harness_tasks"
LAYOUT = "../shared/data/"  # the prefix of the shipped tasks' data files; `data_dir` replaces it


def shipped_tasks() -> dict[str, Path]:
    """name -> YAML file of the task configs curate ships."""
    return {p.stem: p for p in sorted(TASKS_DIR.glob("*.yaml"))}


class HarnessEntry:
    """One `kind: lm_eval` entry of the `evals:` section: its tasks loaded once, its metrics, and its runs."""

    def __init__(self, name: str, task, seed: int):
        self.name = name
        self.task = task
        self.seed = seed
        self.where = f"evals.tasks.{name}.tasks"
        self._loaded = None
        self._manager = None

    # -- loading -------------------------------------------------------------------------------------------

    def specs(self) -> list:
        """What goes to lm-eval's `tasks=`: the shipped configs as dicts (data files rewritten), names, paths."""
        shipped = shipped_tasks()
        out = []
        for t in self.task.tasks:
            if t in shipped:
                import yaml

                cfg = yaml.safe_load(shipped[t].read_text(encoding="utf-8"))
                out.append(_rewrite_data_files(cfg, self.task.data_dir))
            elif t.endswith((".yaml", ".yml")):
                if not Path(t).is_file():
                    raise CurateError(f"no such task file: {t}", self.where)
                out.append(str(Path(t).resolve()))
            else:
                out.append(t)
        return out

    def manager(self):
        if self._manager is None:
            from lm_eval.tasks import TaskManager

            shipped = shipped_tasks()
            needs_registry = any(t not in shipped and not t.endswith((".yaml", ".yml")) for t in self.task.tasks)
            with _quiet():
                # lm-eval's own registry (some 14k task configs) is indexed only when a name needs it: ~10 s
                self._manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=needs_registry)
            for t in self.task.tasks:
                if t not in shipped and not t.endswith((".yaml", ".yml")) and t not in self._manager.all_tasks:
                    raise CurateError(f"lm-eval has no task, group or tag {t!r}"
                                      f"{did_you_mean(t, self._manager.all_tasks)}", self.where)
        return self._manager

    def loaded(self) -> dict:
        """lm-eval's `{"tasks": {name: Task}, "groups": ..., "group_map": ...}` for this entry (loaded once)."""
        if self._loaded is None:
            tm = self.manager()
            try:
                with _quiet():
                    self._loaded = tm.load(self.specs())
            except CurateError:
                raise
            except Exception as e:  # noqa: BLE001 - lm-eval and datasets raise many kinds for a bad task or file
                hub = [t for t in self.task.tasks if t not in shipped_tasks() and not t.endswith((".yaml", ".yml"))]
                hint = (f" (lm-eval's own tasks {hub} load their data from the Hub: they need network; offline, use "
                        f"curate's shipped tasks {sorted(shipped_tasks())} or a task YAML over local files)") if hub else ""
                raise CurateError(f"lm-eval could not load {self.task.tasks}: {type(e).__name__}: {e}{hint}",
                                  self.where) from None
        return self._loaded

    def leaves(self) -> dict:
        return self.loaded()["tasks"]

    def requested(self) -> list[str]:
        """The names lm-eval reports results under, one per entry of `tasks:` (a group's or a task's name)."""
        names = []
        loaded = self.loaded()
        for spec in self.specs():
            if isinstance(spec, dict):
                names.append(spec.get("task"))
            elif spec in loaded["tasks"] or spec in loaded["groups"]:
                names.append(spec)
            else:  # a YAML path: its task or group name
                import yaml

                raw = yaml.safe_load(Path(spec).read_text(encoding="utf-8")) or {}
                names.append(raw.get("group") if isinstance(raw.get("group"), str) and "task" not in raw
                             else raw.get("task"))
        return names

    def sample_indices(self) -> dict[str, list[int]] | None:
        """A seeded sample of `n` documents of every leaf task (lm-eval's `samples=`), or None (all, or `limit`)."""
        if self.task.limit is not None or self.task.n is None:
            return None
        out = {}
        for name, t in sorted(self.leaves().items()):
            total = len(t.eval_docs)
            k = min(self.task.n, total)
            out[name] = sorted(random.Random(f"{self.seed}:{self.name}:{name}").sample(range(total), k))
        return out

    # -- metrics -------------------------------------------------------------------------------------------

    def metrics(self) -> dict[str, dict]:
        """metric name -> {"task", "key", "filter", "higher_is_better", "primary", "leaves"}."""
        out = {}
        leaves = self.leaves()
        groups = self.loaded()["group_map"]
        requested = self.requested()
        single = len(requested) == 1
        for req in requested:
            members = _leaves_of(req, groups) if req in groups else [req]
            members = [m for m in members if m in leaves]
            prefix = self.name if single else f"{self.name}.{req}"
            first = True
            for leaf in members[:1]:  # the group's members share their metrics
                t = leaves[leaf]
                hib = t.higher_is_better() or {}
                for f in t._filters:
                    for metric in (t.aggregation() or {}):
                        label = metric if f.name == "none" else f"{metric}_{f.name}"
                        out[f"{prefix}.{label}"] = {"task": req, "key": f"{metric},{f.name}", "metric": metric,
                                                    "filter": f.name, "higher_is_better": bool(hib.get(metric, True)),
                                                    "primary": first, "leaves": members}
                        first = False
                    if t.OUTPUT_TYPE == "multiple_choice":
                        label = "map@3" if f.name == "none" else f"map@3_{f.name}"
                        out[f"{prefix}.{label}"] = {"task": req, "key": None, "metric": "map@3", "filter": f.name,
                                                    "higher_is_better": True, "primary": False, "leaves": members}
        return out

    def fingerprint_parts(self) -> dict:
        """What decides the results for a given model: the tasks' configs, the sample, the settings."""
        configs = {name: t.dump_config() for name, t in sorted(self.leaves().items())}
        return {"configs": configs, "samples": self.sample_indices(), "limit": self.task.limit,
                "num_fewshot": self.task.num_fewshot, "chat_template": self.task.chat_template}

    # -- running -------------------------------------------------------------------------------------------

    def run(self, model, tokenizer, *, batch_size: int, max_new_tokens: int | None) -> dict:
        """`{"metrics": {name: value}, "items": {name: {"ids", "values"}}, "n", "lm_eval": {...}}`."""
        import lm_eval
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM

        # a tokenizer without a chat template (a base model) gets the plain prompts, and the results say so
        chat = bool(self.task.chat_template and getattr(tokenizer, "chat_template", None))
        with _quiet():
            lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
            results = simple_evaluate(
                lm, tasks=self.specs(), task_manager=self.manager(), limit=self.task.limit,
                samples=self.sample_indices(), num_fewshot=self.task.num_fewshot,
                apply_chat_template=chat, log_samples=True, bootstrap_iters=0,
                gen_kwargs={"max_gen_toks": max_new_tokens} if max_new_tokens else None,
                random_seed=self.seed, numpy_random_seed=self.seed, torch_random_seed=self.seed,
                fewshot_random_seed=self.seed)
        samples = results.get("samples") or {}
        out = {"metrics": {}, "items": {}, "n": {}, "lm_eval": {
            "version": getattr(lm_eval, "__version__", None), "tasks": list(self.task.tasks),
            "n-shot": results.get("n-shot"), "n-samples": results.get("n-samples"),
            "chat_template": chat}}
        if self.task.chat_template and not chat:
            out["note"] = "the tokenizer has no chat template: the prompts went to the model as they are"
        for metric, info in self.metrics().items():
            ids, values = [], []
            for leaf in info["leaves"]:
                for s in samples.get(leaf, []):
                    if s.get("filter") != info["filter"]:
                        continue
                    v = _map3(s) if info["metric"] == "map@3" else s.get(info["metric"])
                    if isinstance(v, bool):
                        v = float(v)
                    if isinstance(v, (int, float)):
                        ids.append(f"{leaf}:{s['doc_id']}")
                        values.append(float(v))
            reported = (results.get("results") or {}).get(info["task"], {}).get(info["key"]) if info["key"] else None
            if isinstance(reported, (int, float)) and not isinstance(reported, bool):
                value = float(reported)
            else:  # map@3, or a group without an aggregate: the mean over every item
                value = sum(values) / len(values) if values else None
            out["metrics"][metric] = None if value is None else round(value, 6)
            if values:
                out["items"][metric] = {"ids": ids, "values": values}
            out["n"][metric] = len(values)
        return out


def _rewrite_data_files(cfg: dict, data_dir: str | None) -> dict:
    cfg = copy.deepcopy(cfg)
    files = (cfg.get("dataset_kwargs") or {}).get("data_files")
    if not data_dir or not files:
        return cfg

    def fix(p):
        return str(Path(data_dir) / p[len(LAYOUT):]) if isinstance(p, str) and p.startswith(LAYOUT) else p

    if isinstance(files, dict):
        cfg["dataset_kwargs"]["data_files"] = {k: ([fix(x) for x in v] if isinstance(v, list) else fix(v))
                                               for k, v in files.items()}
    elif isinstance(files, list):
        cfg["dataset_kwargs"]["data_files"] = [fix(x) for x in files]
    else:
        cfg["dataset_kwargs"]["data_files"] = fix(files)
    return cfg


def _leaves_of(group: str, group_map: dict) -> list[str]:
    out = []
    for child in group_map.get(group, []):
        out += _leaves_of(child, group_map) if child in group_map else [child]
    return out


def _map3(sample: dict) -> float | None:
    """MAP@3 of one multiple-choice sample from lm-eval's per-choice log-likelihoods (ties: earlier option)."""
    resps = sample.get("filtered_resps") or []
    target = sample.get("target")
    if isinstance(target, list):
        target = target[0] if target else None
    if not isinstance(target, int) or not resps:
        return None
    scores = [float(r[0]) if isinstance(r, (list, tuple)) else float(r) for r in resps]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    rank = order.index(target) + 1 if target in order else None
    return (1.0 / rank) if rank is not None and rank <= 3 else 0.0


class _quiet:
    """lm-eval logs every step at INFO and warns that a model object ignores its loading options: quiet it."""

    def __enter__(self):
        from datasets.utils import logging as ds_logging

        self.loggers = [logging.getLogger(n) for n in ("lm_eval", "lm-eval")]
        self.levels = [lg.level for lg in self.loggers]
        for lg in self.loggers:
            lg.setLevel(logging.ERROR)
        self.bars = ds_logging.is_progress_bar_enabled()
        ds_logging.disable_progress_bar()  # "Generating validation split" for every task file
        return self

    def __exit__(self, *exc):
        from datasets.utils import logging as ds_logging

        for lg, level in zip(self.loggers, self.levels):
            lg.setLevel(level)
        if self.bars:
            ds_logging.enable_progress_bar()
        return False
