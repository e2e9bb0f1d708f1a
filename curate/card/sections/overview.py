"""The card's opening: the title with the license warnings, and the dataset summary with its loading snippet."""

from __future__ import annotations

from curate.card import stats as S
from curate.card.markdown import NEEDED, code, fence, pct, prose, table


def header_section(c) -> str:
    run, spec, lic = c["run"], c["spec"], c["lic"]
    m = run.manifest
    t = m["totals"]
    desc = (m.get("recipe") or {}).get("description", "").strip()
    out = [f"# {prose(spec.pretty_name or run.name)}", ""]
    if desc:
        out += [prose(" ".join(desc.split())), ""]
    if lic.non_commercial:
        names = ", ".join(f"{code(n)} ({prose(lic.per_source[n])})" for n in lic.non_commercial)
        out += [f"> **Non-commercial.** Sources under a non-commercial license: {names}. "
                f"This set is {code(lic.license)}: it may not be used for commercial purposes.", ""]
    if lic.unknown:
        out += [f"> **License unknown.** No license was recorded for: {', '.join(f'{code(n)}' for n in lic.unknown)}. "
                "Until one is, the license of this set is `unknown`; do not redistribute it.", ""]
    if lic.no_derivatives:
        out += [f"> **No derivatives.** {', '.join(f'{code(n)}' for n in lic.no_derivatives)} forbid adaptations; "
                "a curated subset is one. Check the terms before distributing.", ""]
    out.append(f"Curated with curate {m.get('curate_version', '?')} from the recipe "
               f"{code(run.name)} (recipe hash {code(m.get('recipe_hash', '?'))}, seed {m.get('seed', '?')}): "
               f"**{t['rows_in']:,} rows in, {t['rows_out']:,} out, {t['dropped']:,} dropped**, each dropped row "
               "recorded with the step and the reason. Everything below is computed from the run, except the "
               f"parts marked {NEEDED}, which only a person can write.")
    return "\n".join(out)


def _load_snippet(c) -> str:
    repo = c["repo_id"]
    cfgs = {x["config_name"]: x["data_files"][0]["path"] for x in (c["meta"].get("configs") or [])}
    if repo:
        lines = ["from datasets import load_dataset", "", f'ds = load_dataset("{repo}", split="train")']
        if "random_baseline" in cfgs:
            lines.append(f'baseline = load_dataset("{repo}", "random_baseline", split="train")')
    else:
        lines = ["from datasets import load_dataset", "", "# from a copy of the published folder (`curate publish --dry-run`):"]
        for name, var in (("default", "ds"), ("random_baseline", "baseline")):
            if name in cfgs:
                path = cfgs[name]
                builder = "arrow" if path.endswith(".arrow") else "json" if path.endswith(".jsonl") else "parquet"
                lines.append(f'{var} = load_dataset("{builder}", data_files="{path}", split="train")')
    return fence("\n".join(lines), "python")


def summary_section(c) -> str:
    run, lic = c["run"], c["lic"]
    m = run.manifest
    t = m["totals"]
    base = m.get("random_baseline")
    src = S.source_table(run)
    rows = [[f"{code(s['source'])}", s["rows_read"], s["rows_out"], pct(s["rows_out"], t["rows_out"]), f"{code(s['license'])}"]
            for s in src]
    out = ["## Dataset summary", "",
           f"- **Rows:** {t['rows_out']:,} conversations (config `default`, split `train`).",
           f"- **License:** {code(lic.license)}" + (" (non-commercial)" if lic.non_commercial else "")
           + " — the most restrictive of the sources' (see [Distribution](#distribution)).",
           f"- **Language:** {', '.join(c['meta'].get('language') or [])}."]
    if base:
        out.append(f"- **Random baseline:** {base['rows']:,} rows drawn at random (seed {base['seed']}) from the same "
                   f"{base['pool_rows']:,}-row pool with the same budget as {code(base['selector'])} (config "
                   "`random_baseline`): train on both to see what the selection bought.")
    out += ["", table(["source", "rows read", "rows kept", "share of the set", "license"], rows,
                      ["l", "r", "r", "r", "l"]), "", _load_snippet(c)]
    return "\n".join(out)
