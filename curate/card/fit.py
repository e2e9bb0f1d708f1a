"""The fitted mixing law of `curate ablate --train` (`train/fit.json`, curate.train.grid_fit) as markdown: the
recommended general share with its interval, the law per metric, the warnings and the next ratios to train.
One renderer for the data card and for the grid's results.md (curate.train.fit_report adds its heading)."""

from __future__ import annotations

from curate.card.markdown import cell, code, table  # cell: in tables; the prose is curate's own text


def fit_markdown(doc: dict) -> str:
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list):
        return "The fit file has an unknown shape (`train/fit.json`)."
    conf = int(round(100 * (doc.get("confidence") or 0.95)))
    rules = "; ".join(c.get("rule", "") for c in doc.get("constraints") or []) or "no general metric with a base value"
    out = [f"r = {cell(doc.get('r') or '')}. Each metric is fitted as {code(doc.get('law'))} "
           f"({cell(doc.get('form') or '')}: a = f(0), b = f'(0), c the curvature) to every run of every ratio; "
           f"{conf}% bands and intervals from {num(doc.get('iterations'))} bootstrap replicates over seeds. "
           f"Retention target {num(doc.get('retention'))}: {rules}."]
    for g in doc["groups"]:
        out.append("")
        if len(doc["groups"]) > 1:
            out += [f"**{cell(g.get('group'))}**", ""]
        out += [f"Ratios {', '.join(num(r) for r in g.get('ratios') or [])}; {num(g.get('seeds'))} seed(s) per ratio.", ""]
        rec = g.get("recommendation") or {}
        at = rec.get("at_r") or {}
        rows = []
        for m, e in (g.get("metrics") or {}).items():
            p = e.get("params") or {}
            here = at.get(m) or {}
            band = here.get("band")
            rows.append([code(m), num(p.get("a")), num(p.get("b")), num(p.get("c")), num(e.get("rmse")),
                         num(e.get("seed_se")), num(here.get("fit")) + (f" [{num(band[0])}, {num(band[1])}]" if band else "")])
        if rows:
            out += [table(["metric", "a = f(0)", "b = f'(0)", "c", "RMSE", "seed s.e.", "at the recommended r"], rows,
                          ["l", "r", "r", "r", "r", "r", "r"]), ""]
        out.append(_recommendation(g, rec, conf))
        if g.get("warnings"):
            out += ["", "Warnings:", *[f"- {w}" for w in g["warnings"]]]
        if g.get("suggest"):
            out += ["", "Next ratios to train, where the fit is least certain: "
                    + ", ".join(f"r = {num(r)}" for r in g["suggest"]) + " (`curate ablate RECIPE --suggest N`)."]
    return "\n".join(out)


def _recommendation(g: dict, rec: dict, conf: int) -> str:
    if not rec:
        return "No recommendation: the grid could not be fitted (see the warnings)."
    if rec.get("r") is None:
        closest = rec.get("closest")
        return ("**No ratio in the grid's range keeps the retention target** by the fitted curves"
                + (f"; the closest is r = {num(closest)}." if closest is not None else "."))
    iv = rec.get("interval")
    text = (f"**Recommended general share: r = {num(rec['r'])}**" + (f" ({code(rec['ratio'])})" if rec.get("ratio") else "")
            + (f", {conf}% interval [{num(iv[0])}, {num(iv[1])}]" if iv else ", no interval (one seed)")
            + f": the largest fitted domain gain over the trained ratios ({', '.join(num(r) for r in g.get('ratios') or [])})"
            + (" while " + "; ".join(rec["constraints"]) if rec.get("constraints") else
               " that keeps the retention target") + ".")
    share = rec.get("feasible_share")
    if share is not None and share < 1:
        text += f" {100 * (1 - share):.0f}% of the bootstrap replicates found no ratio that keeps it."
    return text


def num(v) -> str:
    """4 significant digits: a loss bound such as 2.1702 needs them."""
    if v is None:
        return "–"
    return f"{v:.4g}" if isinstance(v, float) else str(v)
