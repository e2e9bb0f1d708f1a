"""The fitted mixing law of `curate ablate --train` (`train/fit.json`, curate.train.grid_fit) in the data card: the
recommended general share with its interval, the law per metric, the warnings and the next ratios to train."""

from __future__ import annotations

from curate.card.writer import cell, code, fmt, table


def fit_markdown(doc: dict) -> str:
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list):
        return "The fit file has an unknown shape (`train/fit.json`)."
    conf = int(round(100 * (doc.get("confidence") or 0.95)))
    rules = "; ".join(c.get("rule", "") for c in doc.get("constraints") or []) or "no general metric with a base value"
    out = [f"A mixing law {code(doc.get('law'))} ({cell(doc.get('form') or '')}) fitted per metric to every run, "
           f"r = {cell(doc.get('r') or '')}; {conf}% intervals from {fmt(doc.get('iterations'))} bootstrap replicates "
           f"over seeds. Retention target {fmt(doc.get('retention'))}: {cell(rules)}."]
    for g in doc["groups"]:
        out.append("")
        if len(doc["groups"]) > 1:
            out += [f"**{cell(g.get('group'))}**", ""]
        rec = g.get("recommendation") or {}
        if rec.get("r") is not None:
            iv = rec.get("interval")
            out.append(f"Recommended general share **r = {fmt(rec['r'])}**" + (f" ({code(rec['ratio'])})" if rec.get("ratio") else "")
                       + (f", {conf}% interval [{fmt(iv[0])}, {fmt(iv[1])}]" if iv else ", no interval (one seed)")
                       + f": the largest fitted domain gain over the trained ratios ({', '.join(fmt(r) for r in g.get('ratios') or [])}) "
                       "that keeps the retention target.")
        elif rec:
            out.append("No trained ratio range keeps the retention target by the fitted curves"
                       + (f"; the closest is r = {fmt(rec.get('closest'))}." if rec.get("closest") is not None else "."))
        else:
            out.append("No recommendation: the grid could not be fitted (see the warnings).")
        at = rec.get("at_r") or {}
        rows = []
        for m, e in (g.get("metrics") or {}).items():
            p = e.get("params") or {}
            here = at.get(m) or {}
            band = here.get("band")
            rows.append([code(m), fmt(p.get("a")), fmt(p.get("b")), fmt(p.get("c")), fmt(e.get("rmse")),
                         fmt(here.get("fit")) + (f" [{fmt(band[0])}, {fmt(band[1])}]" if band else "")])
        if rows:
            out += ["", table(["metric", "a = f(0)", "b = f'(0)", "c", "RMSE", "at the recommended r"], rows,
                              ["l", "r", "r", "r", "r", "r"])]
        if g.get("warnings"):
            out += ["", "Warnings:", *[f"- {cell(w)}" for w in g["warnings"]]]
        if g.get("suggest"):
            out += ["", "Next ratios to train, where the fit is least certain: "
                    + ", ".join(f"r = {fmt(r)}" for r in g["suggest"]) + " (`curate ablate RECIPE --suggest N`)."]
    return "\n".join(out)
