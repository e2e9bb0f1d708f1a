"""The card's preprocessing section: the step-by-step funnel, each step's non-default parameters, the template and the baseline."""

from __future__ import annotations

import json

from curate.card import stats as S
from curate.card.markdown import cell, code, table
from curate.card.sections.recipe import scrub_paths


def _params_text(name: str, params: dict) -> str:
    """The parameters of a step that differ from its defaults, compactly."""
    defaults = {}
    try:
        from pydantic_core import PydanticUndefined

        from curate.steps.registry import get_step

        for k, f in get_step(name).Params.model_fields.items():
            if f.default_factory is not None:
                defaults[f.alias or k] = f.default_factory()
            elif f.default is not PydanticUndefined:
                defaults[f.alias or k] = f.default
        defaults = json.loads(json.dumps(defaults, default=str))
    except Exception:  # noqa: BLE001 - a step this curate does not know: show every parameter
        defaults = {}
    shown = []
    for k, v in scrub_paths(params).items():
        if k in defaults and defaults[k] == v:
            continue
        if isinstance(v, list) and len(v) > 5:
            text = f"[{len(v)} items]"
        else:
            text = json.dumps(v, ensure_ascii=False)
            if len(text) > 70:
                text = text[:69] + "…"
        shown.append(f"{k}={text}")
    return ", ".join(shown) or "(defaults)"


def funnel_markdown(stages: list[dict], totals: dict) -> str:
    rows = []
    for s in stages:
        reasons = "; ".join(f"{r} ({n:,})" for r, n in s["reasons"].items()) or "–"
        if s.get("repeats"):
            reasons = f"{s['repeats']:,} rows drawn more than once (upsampled); " + reasons
        if s.get("added"):
            reasons = f"+{s['added']:,} rows from other runs enter here; " + reasons
        rows.append([f"{code(s['label'])}", s["role"], s["rows_in"], s["rows_out"], s["dropped"], cell(reasons)])
    repeats = totals.get("repeats", 0)
    identity = (f"rows in = rows out − repeats + dropped: {totals['rows_in']:,} = {totals['rows_out']:,} − {repeats:,} + "
                f"{totals['dropped']:,}" if repeats else
                f"rows in = rows out + dropped: {totals['rows_in']:,} = {totals['rows_out']:,} + {totals['dropped']:,}")
    rows.append(["**total**", "", totals["rows_in"], totals["rows_out"], totals["dropped"], cell(identity)])
    return ("<!-- funnel:begin -->\n" + table(["step", "role", "rows in", "rows out", "dropped", "why (every reason, with its count)"],
                                              rows, ["l", "l", "r", "r", "r", "l"]) + "\n<!-- funnel:end -->")


def preprocessing_section(c) -> str:
    run, stages = c["run"], c["stages"]
    m = run.manifest
    recipe = m.get("recipe") or {}
    steps = [f"{i}. {code(s['label'])} ({s['role']}): {cell(_params_text(s['name'], s['params']))}"
             for i, s in enumerate(m["steps"], 1)]
    tpl = recipe.get("template")
    tpl_text = ("no chat template was applied (`template: null`)." if not tpl else
                f"`text` is rendered with the {code(tpl.get('format'))} chat format"
                + (f" (tokenizer {code(S.display_path(tpl['tokenizer']))})" if tpl.get("tokenizer") else "") + ".")
    base = m.get("random_baseline")
    out = [
        "## Preprocessing, cleaning and selection", "",
        "Every row that went in either came out or was dropped by exactly one step, with a reason. Reasons are "
        "counted by rule (numbers in them replaced by `#`). The funnel, from the manifest:", "",
        funnel_markdown(stages, m["totals"]), "",
    ]
    if "funnel.png" in c["plots"]:
        out += ["![the funnel: rows after each step](funnel.png)", ""]
    out += ["The steps, in order, with the parameters that differ from their defaults:", "", *steps, "",
            f"**Template:** {tpl_text}", ""]
    if base:
        out += [f"**Random baseline:** `baseline_random` holds {base['rows']:,} rows drawn with seed {base['seed']} from "
                f"the {base['pool_rows']:,} rows that {code(base['selector'])} chose from, under the same budget "
                f"({cell(json.dumps(base.get('budget', {})))}).", ""]
    out += ["**Is the raw data kept?** The run folder keeps every dropped row in `rejects.jsonl` with its step, reason and "
            "(for duplicates) the id of the row it duplicated; `curate inspect RUN_DIR --dropped` shows them."]
    return "\n".join(out)
