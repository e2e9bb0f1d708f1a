"""`curate compare`'s results as markdown: one renderer for the data card ("Compared with the random
baseline") and for compare's own results.md (curate.train.compare_report adds its heading).

For compare's own file (`kind: compare`): what each condition trained on, one row per metric (the mean over
seeds and its t-interval per condition), the paired per-item comparisons with the subset, and the summary
(domain gain, general retention, final train loss, staircase score). Any other file with per-condition
metrics gets the metrics table and the rest as it is; any other shape is rendered as it is.
"""

from __future__ import annotations

from pathlib import Path

from curate.card import stats as S
from curate.card.markdown import cell, code, render_results, table
from curate.numbers import fmt, metric

COMPARE_RESULTS = Path("compare") / "results.json"


def compare_markdown(results, results_file: str = COMPARE_RESULTS.as_posix()) -> str:
    """The results of `curate compare` (`results_file`: where the reader finds the full file)."""
    metrics = results.get("metrics") if isinstance(results, dict) else None
    if not (isinstance(metrics, dict) and metrics and all(isinstance(v, dict) and isinstance(v.get("by_condition"), dict)
                                                           for v in metrics.values())):
        return render_results(results)
    conditions = results.get("conditions") or list(dict.fromkeys(k for v in metrics.values() for k in v["by_condition"]))
    rows = [[f"{code(name)}", cell(m.get("role") or "–"), "higher" if m.get("higher_is_better", True) else "lower",
             metric(m.get("base")), *[stat(m["by_condition"].get(k)) for k in conditions]] for name, m in metrics.items()]
    out = [table(["metric", "role", "better", "base model", *[f"{code(k)}" for k in conditions]], rows,
                 ["l", "l", "l", "r", *["r"] * len(conditions)])]
    if results.get("kind") == "compare":  # curate compare's own file: its summary, the rest stays in the file
        return "\n".join(_intro(results, results_file) + ["", *out, *_paired(results), "", *_summary(results, conditions)])
    rest = {k: v for k, v in results.items() if k not in ("metrics", "conditions")}
    if rest:
        out += ["", render_results(rest)]
    return "\n".join(out)


def stat(s) -> str:
    """A mean over seeds with its interval in brackets ("–" when there is none)."""
    if not isinstance(s, dict) or s.get("mean") is None:
        return "–"
    ci = s.get("ci")
    return metric(s["mean"]) + (f" [{metric(ci[0])}, {metric(ci[1])}]" if isinstance(ci, list) and len(ci) == 2 else "")


def _intro(results: dict, results_file: str) -> list[str]:
    model = ((results.get("settings") or {}).get("train") or {}).get("model") or {}
    conds = results.get("conditions") or {}
    rows = [[f"{code(c)}", *[", ".join(fmt(n) for n in (v.get(k) or [])) for k in ("rows", "tokens", "steps", "tokens_trained")],
             cell(v.get("description") or "")] for c, v in conds.items()] if isinstance(conds, dict) else []
    seeds = results.get("seeds") or []
    lines = [f"`curate compare` fine-tuned {code(cell(S.display_path(str(model.get('name', '?')))))} (LoRA) with identical "
             f"settings on each condition, {len(seeds)} seed(s) ({', '.join(str(x) for x in seeds)}); means over seeds "
             f"with their {int(round(100 * (results.get('confidence') or 0.95)))}% t-intervals in brackets (none with "
             f"one seed); the base model is the model before fine-tuning. Full settings and every run: {code(results_file)}.", ""]
    if rows:
        lines.append(table(["condition", "rows per run", "tokens per run", "optimizer steps", "tokens trained", "what"],
                           rows, ["l", "r", "r", "r", "r", "l"]))
    return lines


def _paired(results: dict) -> list[str]:
    pairs = results.get("paired") or {}
    if not pairs:
        return []
    conf = int(round(100 * (results.get("confidence") or 0.95)))
    rows = [[f"{code(m)}", f"{code(arm)}", f"{p['items']} × {p['seeds']}", metric(p["advantage"]),
             f"[{metric(p['ci'][0])}, {metric(p['ci'][1])}]", f"{p['wins']} / {p['ties']} / {p['losses']}",
             cell(p["verdict"] if p["verdict"] != "arm better" else f"{arm} better")]
            for m, row in pairs.items() for arm, p in row.items()]
    return ["", f"Paired against the subset (the same eval items, the same seed index): the subset's advantage is "
            f"the mean per-item difference, signed so that positive means the subset is better (for a loss: the arm's "
            f"loss minus the subset's, token-weighted), with its {conf}% bootstrap interval over items × seeds, and the "
            "subset's wins / ties / losses over the (seed, item) pairs; an interval that covers 0 is no difference "
            "detected.", "",
            table(["metric", "arm", "items × seeds", "subset's advantage", "interval", "wins / ties / losses", "verdict"],
                  rows, ["l", "l", "r", "r", "r", "r", "l"])]


def _summary(results: dict, conditions) -> list[str]:
    summary = results.get("summary") or {}
    rows = [[f"{code(c)}", *[stat((summary.get(c) or {}).get(k)) for k in
                         ("domain_gain", "general_retention", "train_loss_last", "staircase_score")]]
            for c in conditions if c in summary]
    lines = []
    if rows:
        lines += ["Domain gain and general retention are changes against the base model (positive is better; "
                  "forgetting is minus the retention):", "",
                  table(["condition", "domain gain", "general retention", "final train loss", "staircase score"], rows,
                        ["l", "r", "r", "r", "r"])]
    held = results.get("holdout") or {}
    if held.get("rows"):
        lines += ["", f"{code(held.get('metric'))}: the loss on {fmt(held['rows'])} pool rows that no condition trained on."]
    pool = results.get("pool") or {}
    if pool.get("rows"):
        lines += ["", f"The pool: {fmt(pool['rows'])} rows ({cell(pool.get('built_by') or '')})."]
    return lines
