"""The fitted mixing law in a trained grid's results.md (the fit document of curate.train.grid_fit)."""

from __future__ import annotations


def fit_markdown(doc: dict) -> list[str]:
    iters, conf = doc["iterations"], int(round(100 * doc["confidence"]))
    lines = ["", "## Fitted mixing law", "",
             f"r = {doc['r']}. Each metric is fitted as {doc['law']} ({doc['form']}: a = f(0), b = f'(0), c the "
             f"curvature) to every run of every ratio; {conf}% bands and intervals from {iters} bootstrap replicates "
             f"over seeds. Retention target {doc['retention']:g}: "
             + ("; ".join(c["rule"] for c in doc["constraints"]) or "no general metric with a base value") + ".", ""]
    for g in doc["groups"]:
        if len(doc["groups"]) > 1:
            lines += [f"### {g['group']}", ""]
        lines.append(f"Ratios {', '.join(f'{r:g}' for r in g['ratios'])}; {g['seeds']} seed(s) per ratio.")
        lines.append("")
        if g["metrics"]:
            lines += ["| metric | a = f(0) | b = f'(0) | c | RMSE | seed s.e. | at the recommended r |", "|---|---|---|---|---|---|---|"]
            at = (g.get("recommendation") or {}).get("at_r") or {}
            for m, e in g["metrics"].items():
                p = e["params"]
                here = at.get(m)
                cell = "–" if not here else _num(here["fit"]) + (f" [{_num(here['band'][0])}, {_num(here['band'][1])}]"
                                                              if here.get("band") else "")
                lines.append(f"| {m} | {_num(p['a'])} | {_num(p['b'])} | {_num(p['c'])} | {_num(e['rmse'])} | "
                             f"{_num(e['seed_se'])} | {cell} |")
            lines.append("")
        lines += recommendation_lines(g, conf)
        if g["warnings"]:
            lines += ["", "Warnings:", *[f"- {w}" for w in g["warnings"]]]
        if g.get("suggest"):
            lines += ["", "Next ratios to train, where the fit is least certain: "
                      + ", ".join(f"r = {r:g}" for r in g["suggest"]) + " (`curate ablate RECIPE --suggest N`)."]
        lines.append("")
    return lines


def recommendation_lines(g: dict, conf: int) -> list[str]:
    rec = g.get("recommendation")
    if not rec:
        return ["No recommendation (see the warnings)."]
    if rec["r"] is None:
        closest = rec.get("closest")
        return [f"**No ratio in the grid's range keeps the retention target** by the fitted curves"
                + (f"; the closest is r = {closest:g}." if closest is not None else ".")]
    interval = rec.get("interval")
    text = (f"**Recommended general share: r = {rec['r']:g}**" + (f" ({rec['ratio']})" if rec.get("ratio") else "")
            + (f", {conf}% interval [{interval[0]:g}, {interval[1]:g}]" if interval else "")
            + ": the most fitted domain gain while " + "; ".join(rec["constraints"]) + ".")
    if rec.get("feasible_share") is not None and rec["feasible_share"] < 1:
        text += f" {100 * (1 - rec['feasible_share']):.0f}% of the bootstrap replicates found no ratio that keeps it."
    return [text]


def _num(v) -> str:
    if v is None:
        return "–"
    return f"{v:.4g}" if isinstance(v, float) else str(v)
