"""`curate compare`'s results in the card: one row per metric per condition, with compare's own summary."""

from __future__ import annotations

from pathlib import Path

from curate.card import stats as S
from curate.card.markdown import cell, code, render_results, table
from curate.numbers import fmt

COMPARE_RESULTS = Path("compare") / "results.json"


def compare_markdown(results) -> str:
    """`curate compare` results: one row per metric, the mean and confidence interval per condition
    (subset, random, full); any other shape is rendered as it is."""
    metrics = results.get("metrics") if isinstance(results, dict) else None
    if not (isinstance(metrics, dict) and metrics and all(isinstance(v, dict) and isinstance(v.get("by_condition"), dict)
                                                           for v in metrics.values())):
        return render_results(results)
    conditions = results.get("conditions") or list(dict.fromkeys(k for v in metrics.values() for k in v["by_condition"]))

    def stat(s) -> str:
        if not isinstance(s, dict) or s.get("mean") is None:
            return "–"
        ci = s.get("ci")
        return fmt(s["mean"]) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if isinstance(ci, list) and len(ci) == 2 else "")

    rows = [[f"{code(name)}", cell(m.get("role", "")), "higher" if m.get("higher_is_better", True) else "lower",
             fmt(m.get("base")), *[stat(m["by_condition"].get(k)) for k in conditions]] for name, m in metrics.items()]
    out = [table(["metric", "role", "better", "base model", *[f"{code(k)}" for k in conditions]], rows,
                 ["l", "l", "l", "r", *["r"] * len(conditions)])]
    if results.get("kind") == "compare":  # curate compare's own file: its summary, the rest stays in the file
        return "\n".join(_compare_intro(results) + ["", *out, "", *_compare_summary(results, conditions, stat)])
    rest = {k: v for k, v in results.items() if k not in ("metrics", "conditions")}
    if rest:
        out += ["", render_results(rest)]
    return "\n".join(out)


def _compare_intro(results: dict) -> list[str]:
    model = ((results.get("settings") or {}).get("train") or {}).get("model") or {}
    conds = results.get("conditions") or {}
    rows = [[f"{code(c)}", ", ".join(fmt(n) for n in (v.get("rows") or [])), cell(v.get("description") or "")]
            for c, v in conds.items()] if isinstance(conds, dict) else []
    seeds = results.get("seeds") or []
    lines = [f"`curate compare` fine-tuned {code(cell(S.display_path(str(model.get('name', '?')))))} (LoRA) with identical "
             f"settings on each condition, {len(seeds)} seed(s) ({', '.join(str(x) for x in seeds)}); "
             f"{int(round(100 * (results.get('confidence') or 0.95)))}% t-intervals over seeds in brackets. "
             "Full settings and every run: `compare/results.json`.", ""]
    if rows:
        lines.append(table(["condition", "rows per run", "what"], rows, ["l", "r", "l"]))
    return lines


def _compare_summary(results: dict, conditions, stat) -> list[str]:
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
    return lines
