"""The evaluation suite: run the configured evaluations on a model, and once (cached) on its base model.

```python
suite = Suite(eval_spec, loss_sets={"pool_heldout": LossSet(rows, role="domain")})
base = suite.run_base(model_spec)                 # cached under <cache>/evals by model fingerprint + suite
tuned = suite.run(model, tokenizer)               # {"metrics": {"arc_easy.accuracy": 0.41, ...}, "tasks": {...}}
gains = suite.scores(tuned["metrics"], base["metrics"])   # {"domain_gain": ..., "general_retention": ...}
```

Metric names are `<task>.<metric>`: multiple choice `accuracy` (primary), `map@3`, `chance`; gsm8k
`exact_match`; generation `rougeL` (primary), `bleu`; loss `loss` (lower is better) and `perplexity`;
lm_eval the harness tasks' own metrics and `map@3` (curate.evals.harness).

Per-item results: `run()` also returns `items`: metric -> `{"ids", "values", "weights"}`, one value per eval
item (a question, a held-out row; `weights`: the row's assistant tokens for a loss, else absent), the same ids
for every model, so that two models can be compared item by item (curate.train.stats.paired). BLEU, a corpus
statistic, has none.
Loss sets given by the caller (`validation`, `pool_heldout`) are rows already rendered by the recipe's
template (`text`, `assistant_spans`), like the training rows.

Change against the base model is signed so that positive is better (`value - base`, or `base - value`
for a loss). Domain gain = the mean change of the primary metrics of the domain tasks (or of
`domain_metric`); general retention = the same over the general tasks (or `general_metric`): 0 means
nothing was forgotten, negative is forgetting. Forgetting = -general retention.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from curate.specs.evals import LOWER_IS_BETTER, PRIMARY, EvalSpec
from curate.numbers import metric

METRICS = {
    "multiple_choice": ("accuracy", "map@3"),
    "gsm8k": ("exact_match",),
    "generation": ("rougeL", "bleu"),
    "loss": ("loss",),
}


@dataclass
class LossSet:
    """Held-out rows (with `text` and `assistant_spans`) whose assistant-token loss is a metric."""

    rows: list[dict]
    role: str | None = None  # domain | general | None (reported, not in gain or forgetting)


class Suite:
    def __init__(self, spec: EvalSpec, loss_sets: dict[str, LossSet] | None = None,
                 heldout: dict[str, list[dict]] | None = None):
        self.spec = spec
        self.loss_sets = dict(loss_sets or {})
        self.heldout = dict(heldout or {})  # mix component -> the rows it held out (tasks with `heldout:`)
        self._rows: dict[str, list[dict]] = {}
        self._harness: dict = {}

    def harness(self, name: str):
        """The `kind: lm_eval` entry `name` (curate.evals.harness.HarnessEntry), its tasks loaded once."""
        if name not in self._harness:
            from curate.evals.harness import HarnessEntry

            self._harness[name] = HarnessEntry(name, self.spec.tasks[name], self.spec.seed)
        return self._harness[name]

    # -- what is measured --------------------------------------------------------------------------

    def rows(self, name: str) -> list[dict]:
        if name not in self._rows:
            from curate.evals.data import load_task_rows

            self._rows[name] = load_task_rows(name, self.spec.tasks[name], self.spec.seed, self.heldout)
        return self._rows[name]

    def metric_info(self) -> dict[str, dict]:
        """metric -> {task, kind, role, primary, higher_is_better}."""
        info = {}
        for name, task in self.spec.tasks.items():
            if task.kind == "lm_eval":
                for m, i in self.harness(name).metrics().items():
                    info[m] = {"task": name, "kind": "lm_eval", "role": task.role, "primary": i["primary"],
                               "higher_is_better": i["higher_is_better"]}
                continue
            for m in METRICS[task.kind]:
                info[f"{name}.{m}"] = {"task": name, "kind": task.kind, "role": task.role, "primary": m == PRIMARY[task.kind],
                                       "higher_is_better": m not in LOWER_IS_BETTER}
        for name, ls in self.loss_sets.items():
            info[f"{name}.loss"] = {"task": name, "kind": "loss", "role": ls.role, "primary": True, "higher_is_better": False}
        return info

    def fingerprint(self) -> str:
        """A hash of everything that decides the results for a given model: settings and the rows themselves."""
        spec = self.spec.model_dump(mode="json", exclude={"base", "cache", "batch_size", "domain_metric", "general_metric"})
        parts = {"spec": spec, "tasks": {}, "loss_sets": {}}
        for name, task in self.spec.tasks.items():
            if task.kind == "lm_eval":
                parts["tasks"][name] = _digest(self.harness(name).fingerprint_parts())
            else:
                parts["tasks"][name] = _digest([[r["messages"], r["meta"]] for r in self.rows(name)])
        for name, ls in self.loss_sets.items():
            parts["loss_sets"][name] = _digest([[r["text"], r["assistant_spans"]] for r in ls.rows])
        return _digest(parts)[:24]

    # -- running -----------------------------------------------------------------------------------

    def run(self, model, tokenizer, progress: Callable[[str], None] | None = None) -> dict:
        """`{"metrics": {name: value}, "tasks": {task: details}, "template", "seconds"}` for a loaded model."""
        from curate.evals.data import PromptFormat
        from curate.evals.generation import evaluate_generation
        from curate.evals.gsm8k import evaluate_gsm8k
        from curate.evals.loss import assistant_loss
        from curate.evals.multiple_choice import evaluate_multiple_choice

        s = self.spec
        fmt = PromptFormat(s.template, tokenizer)
        out: dict = {"metrics": {}, "tasks": {}, "template": fmt.name, "seconds": {}, "items": {}}
        if fmt.note:
            out["note"] = fmt.note
        for name, task in s.tasks.items():
            t = time.perf_counter()
            new_tokens = task.max_new_tokens or s.max_new_tokens
            if task.kind == "lm_eval":
                if progress:
                    progress(f"eval {name} (lm_eval: {', '.join(task.tasks)})")
                res = self.harness(name).run(model, tokenizer, batch_size=s.batch_size, max_new_tokens=task.max_new_tokens)
                out["items"].update(res.pop("items"))
                out["metrics"].update(res.pop("metrics"))
                res.update(kind=task.kind, role=task.role)
                out["tasks"][name] = res
                out["seconds"][name] = round(time.perf_counter() - t, 2)
                continue
            rows = self.rows(name)
            if progress:
                progress(f"eval {name} ({task.kind}, {len(rows)} rows)")
            if task.kind == "multiple_choice":
                res = evaluate_multiple_choice(model, tokenizer, fmt, rows, scoring=task.scoring, batch_size=s.batch_size)
            elif task.kind == "gsm8k":
                res = evaluate_gsm8k(model, tokenizer, fmt, rows, max_new_tokens=new_tokens, batch_size=s.batch_size)
            elif task.kind == "generation":
                res = evaluate_generation(model, tokenizer, fmt, rows, max_new_tokens=new_tokens, batch_size=s.batch_size)
            else:
                rendered = []
                for r in rows:
                    text, spans = fmt.render(r["messages"])
                    rendered.append({"text": text, "assistant_spans": [list(x) for x in spans]})
                res = assistant_loss(model, tokenizer, rendered, max_length=s.max_length, batch_size=s.batch_size)
            res.update(kind=task.kind, role=task.role)
            out["items"].update(_items(name, res.pop("items", {}), len(rows)))
            out["tasks"][name] = res
            for m in METRICS[task.kind]:
                out["metrics"][f"{name}.{m}"] = res.get(m)
            out["seconds"][name] = round(time.perf_counter() - t, 2)
        for name, ls in self.loss_sets.items():
            t = time.perf_counter()
            if progress:
                progress(f"eval {name} (loss, {len(ls.rows)} rows)")
            res = assistant_loss(model, tokenizer, ls.rows, max_length=s.max_length, batch_size=s.batch_size)
            res.update(kind="loss", role=ls.role)
            out["items"].update(_items(name, res.pop("items", {}), len(ls.rows)))
            out["tasks"][name] = res
            out["metrics"][f"{name}.loss"] = res["loss"]
            out["seconds"][name] = round(time.perf_counter() - t, 2)
        return out

    def run_base(self, model_spec=None, *, model=None, tokenizer=None, cache_dir: str | Path | None = None,
                 base_dir: str | Path = ".", progress: Callable[[str], None] | None = None) -> dict:
        """The suite on the base model, from the cache when this model and suite were evaluated before.

        The cache key is the model's fingerprint (curate.models: its weights, config and dtype) and the
        suite's fingerprint (settings and rows); results go to `<cache_dir>/<key>.json`."""
        if model is None:
            from curate.models import load_causal_lm

            model, tokenizer = load_causal_lm(model_spec, base_dir=base_dir, where="train.model")
        key = None
        try:
            from curate import __version__
            from curate.models import model_source

            key = _digest({"model": model_source(model).fingerprint(), "suite": self.fingerprint(), "curate": __version__})[:24]
        except ValueError:  # a model not loaded through curate.models has no fingerprint: no cache
            pass
        path = Path(cache_dir) / f"{key}.json" if (cache_dir and key and self.spec.cache) else None
        if path is not None and path.is_file():
            cached = json.loads(path.read_text(encoding="utf-8"))
            cached["cached"] = True
            return cached
        result = self.run(model, tokenizer, progress)
        result["model"] = _describe(model)
        if path is not None:
            from curate.io import write_json_atomic

            write_json_atomic(path, result)
        result["cached"] = False
        return result

    # -- gain and forgetting -----------------------------------------------------------------------

    def scores(self, metrics: dict, base: dict) -> dict:
        """`{"domain_gain", "general_retention", "forgetting", "changes": {metric: signed change}}`."""
        info = self.metric_info()
        changes = {m: improvement(metrics.get(m), base.get(m), info[m]["higher_is_better"]) for m in info}
        out = {"changes": changes}
        for role, chosen, key in (("domain", self.spec.domain_metric, "domain_gain"),
                                  ("general", self.spec.general_metric, "general_retention")):
            if chosen:
                out[key] = changes.get(chosen)
            else:
                vals = [changes[m] for m, i in info.items() if i["role"] == role and i["primary"] and changes[m] is not None]
                out[key] = round(sum(vals) / len(vals), 6) if vals else None
        out["forgetting"] = -out["general_retention"] if out["general_retention"] is not None else None
        return out


def _items(task: str, items: dict, n: int) -> dict:
    """`{"<task>.<metric>": {"ids", "values"[, "weights"]}}` from an evaluation's per-item results (a plain list
    is one value per row, ids the rows' positions)."""
    out = {}
    for m, v in items.items():
        out[f"{task}.{m}"] = v if isinstance(v, dict) else {"ids": [str(i) for i in range(len(v))], "values": list(v)}
    return out


def improvement(value, base, higher_is_better: bool = True):
    """value - base (or base - value for a loss): positive is better; None when either is missing."""
    if value is None or base is None:
        return None
    return round((value - base) if higher_is_better else (base - value), 6)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def _describe(model) -> dict:
    try:
        from curate.models import model_source

        return model_source(model).describe()
    except ValueError:
        return {"model": getattr(getattr(model, "config", None), "_name_or_path", type(model).__name__)}


def markdown_table(results: dict[str, dict], info: dict[str, dict]) -> list[str]:
    """A markdown table: one row per metric, one column per model (`results`: model name -> metrics)."""
    names = list(results)
    lines = ["| metric | role | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for m, i in info.items():
        arrow = "↑" if i["higher_is_better"] else "↓"
        cells = [metric(results[n].get(m)) for n in names]
        lines.append(f"| {m} {arrow} | {i['role'] or '-'} | " + " | ".join(cells) + " |")
    return lines


