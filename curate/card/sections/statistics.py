"""The card's statistics section: rows and tokens per source, lengths, scores, languages, duplicates and contamination."""

from __future__ import annotations

from curate.card import stats as S
from curate.card.markdown import cell, code, pct, prose, table
from curate.numbers import fmt


def statistics_section(c) -> str:
    run, spec = c["run"], c["spec"]
    src = S.source_table(run)
    has_tokens = "n_tokens" in run.columns
    unit = "tokens" if has_tokens else "words"
    rows = []
    for s in src:
        rows.append([f"{code(s['source'])}", s["rows_read"], s["rows_out"], pct(s["rows_out"], s["rows_read"]),
                     s["tokens"] if has_tokens else s["words"],
                     (s["tokens"] if has_tokens else s["words"]) / s["rows_out"] if s["rows_out"] else None])
    tot_read = sum(s["rows_read"] for s in src)
    tot_out = sum(s["rows_out"] for s in src)
    tot_units = sum((s["tokens"] if has_tokens else s["words"]) or 0 for s in src)
    rows.append(["**total**", tot_read, tot_out, pct(tot_out, tot_read), tot_units, tot_units / tot_out if tot_out else None])
    out = ["## Statistics", "", "### Rows and tokens per source", ""]
    out.append("Token counts come from the `n_tokens` column (`score.tokens`)." if has_tokens else
               "Tokens were not counted (the recipe has no `score.tokens` step): the sizes below are whitespace-separated "
               "words over all turns of the kept rows.")
    out += ["", table(["source", "rows read", "rows kept", "kept", unit, f"{unit} per row"], rows,
                      ["l", "r", "r", "r", "r", "r"]), ""]
    # where each source's rows left
    stage_labels = [s["label"] for s in c["stages"] if s["dropped"]]
    if stage_labels:
        mrows = [[f"{code(s['source'])}", s["rows_read"], *[s["dropped_by_step"].get(label, 0) for label in stage_labels], s["rows_out"]]
                 for s in src]
        out += ["### Where each source's rows left", "",
                table(["source", "read", *[f"{code(x)}" for x in stage_labels], "kept"], mrows,
                      ["l"] + ["r"] * (len(stage_labels) + 2)), ""]
    out += ["### Lengths", ""]
    if "lengths.png" in c["plots"]:
        out += ["![prompt and response words per kept row, by source](lengths.png)", ""]
    summary = S.score_summary(run)
    out += ["### Score distributions", ""]
    if summary:
        out += ["Over the kept rows (the plot also shows every scored row, kept or dropped after scoring):", "",
                table(["column", "rows", "missing", "mean", "min", "25%", "median", "75%", "max"],
                      [[f"{code(s['column'])}", s["rows"], s["missing"], s["mean"], s["min"], s["p25"], s["median"], s["p75"], s["max"]]
                       for s in summary], ["l"] + ["r"] * 8), ""]
        if "scores.png" in c["plots"]:
            out += ["![score histograms: kept rows against all scored rows](scores.png)", ""]
    else:
        out += ["No score columns (no scorer ran).", ""]
    mix = S.language_mix(run)
    out += ["### Language mix", ""]
    if mix:
        langs = list(dict.fromkeys([*mix["kept"], *mix["scored"]]))
        kept_n, scored_n = sum(mix["kept"].values()), sum(mix["scored"].values())
        out += ["From the `lang` column (`score.language`):", "",
                table(["language", "kept rows", "share", "scored rows (kept + dropped after scoring)"],
                      [[f"{code(lang)}", mix["kept"].get(lang, 0), pct(mix["kept"].get(lang, 0), kept_n), mix["scored"].get(lang, 0)]
                       for lang in langs[:20]] + ([["…", "", "", ""]] if len(langs) > 20 else []),
                      ["l", "r", "r", "r"]), ""]
        if scored_n and len(langs) > 20:
            out += [f"({len(langs) - 20} more languages among the scored rows.)", ""]
    else:
        out += ["Not measured: the recipe has no `score.language` step"
                + f" (the metadata's {code(', '.join(c['meta'].get('language') or []))} is the card's setting).", ""]
    out += ["### Duplicates", ""]
    dups = S.duplicates(run, spec.examples)
    if dups:
        out += [table(["step", "rows dropped", "clusters", "reasons"],
                      [[f"{code(d['step'])}", d["dropped"], d["clusters"], cell("; ".join(f"{r} ({n:,})" for r, n in d["by_reason"].items()) or "–")]
                       for d in dups], ["l", "r", "r", "l"]), ""]
        for d in dups:
            if not d["examples"]:
                continue
            out += [f"Examples from {code(d['step'])} (the kept row, then one row dropped as its duplicate):", "",
                    _pairs_table(d["examples"]), ""]
    else:
        out += ["No deduplication step ran.", ""]
    from curate.runfolder import alarms

    for message in alarms(run.manifest):
        out += [f"> **Warning.** {prose(message.replace('RUN', 'the run folder'))}", ""]
    out += ["### Contamination", ""]
    cont = S.contamination(run, spec.examples)
    if cont is None:
        out += ["No decontamination step ran: overlap with evaluation sets was not checked.", ""]
    else:
        for d in cont:
            checked = ", ".join(f"{code(n)} ({k:,} texts)" for n, k in d["eval_sets"].items()) or "its eval sets"
            out += [f"{code(d['step'])} checked every row against {checked} and dropped **{d['dropped']:,}** rows"
                    + (": " + ", ".join(f"{n:,} overlapping {code(cell(k))}" for k, n in d["by_eval_set"].items())
                       if d["by_eval_set"] else "") + ".", ""]
            if d["by_check"]:
                out += ["By check: " + ", ".join(f"{cell(k)} {fmt(v)}" for k, v in d["by_check"].items()) + ".", ""]
            if d["items_by_check"]:
                kinds = ["ngram", "ngram+near", "near", "whole", "uncheckable"]
                out += ["How the eval items were looked for (by their length in words: any 13 of them; or the whole "
                        "item with one word allowed to differ; or the whole item, exactly; or not at all when too "
                        "short to tell a copy from a coincidence):", "",
                        table(["eval set", *kinds], [[code(n), *[c.get(k, 0) for k in kinds]]
                                                    for n, c in d["items_by_check"].items()],
                              ["l"] + ["r"] * len(kinds)), ""]
                if d["too_short"]:
                    out += [f"**{d['too_short']:,} eval items were too short to check** (see `uncheckable`): a row "
                            "may hold one of them unseen.", ""]
            if d["examples"]:
                rows = []
                for e in d["examples"]:
                    det = e["detail"]
                    evidence = (f"shared words: “{det['ngram']}”" if det.get("ngram") else
                                f"similarity {det['similarity']:.3f}" if isinstance(det.get("similarity"), (int, float)) else e["reason"])
                    eval_row = str(det.get("eval_row", ""))
                    eval_row = S.display_path(eval_row) if eval_row.startswith(("/", ".", "~")) else eval_row
                    rows.append([f"{code(e['source'])}", cell(e["prompt"], 140), cell(f"{det.get('eval_set', '?')} {eval_row}", 80),
                                 cell(evidence, 140)])
                out += [table(["source", "prompt", "eval row", "evidence"], rows), ""]
    return "\n".join(out)


def _pairs_table(examples: list[dict]) -> str:
    rows = []
    for ex in examples:
        drop = ex["dropped"][0]
        kept = ex["kept"] or {}
        sim = drop["detail"].get("jaccard")
        rows.append([cell(f"{kept.get('source', '?')}: {kept.get('prompt', '(not found)')} → {kept.get('response', '')}", 180),
                     cell(f"{drop['source']}: {drop['prompt']} → {drop['response']}", 180),
                     cell(drop["reason"] + (f" (jaccard {sim:.2f})" if isinstance(sim, (int, float)) else ""), 80)])
    return table(["kept", "dropped as its duplicate", "why"], rows)
