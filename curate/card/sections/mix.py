"""The card's mix section: the manifest's `mix` block, one row per component, asked against drawn."""

from __future__ import annotations

from curate.card import stats as S
from curate.card.markdown import cell, code, pct, render_results, table


def _share_text(requested: dict) -> str:
    kind = next((k for k in ("fraction", "count", "of_component") if k in requested), None)
    if kind == "fraction":
        return f"{requested[kind]:.0%} of the mix"
    if kind == "of_component":
        return f"{requested[kind]:.0%} of the component"
    if kind == "count":
        return f"{requested[kind]:,} rows"
    return "from the temperature" if "fraction" not in requested else "–"


def mix_markdown(mix: dict) -> str:
    """The manifest's `mix` block as a table; anything of another shape is rendered as it is."""
    comps, spec = mix.get("components"), mix.get("spec") or {}
    if not isinstance(comps, dict) or not all(isinstance(v, dict) and "realised" in v for v in comps.values()):
        return render_results(mix)
    specs = spec.get("components") or {}
    size = spec.get("size") or {}
    unit = "tokens" if size.get("tokens") else "rows"
    rows = []
    for name, v in comps.items():
        origin = specs.get(name, {})
        where = (f"source {code(origin['source'])}" if origin.get("source") else f"run {code(S.display_path(origin['run']))}"
                 if origin.get("run") else f"recipe {code(S.display_path(origin['recipe']))}" if origin.get("recipe") else "–")
        req, avail, real = v.get("requested") or {}, v.get("available") or {}, v["realised"]
        rows.append([f"{code(name)}", where, cell(_share_text(req)), req.get(unit, req.get("rows")), avail.get(unit, avail.get("rows")),
                     real.get("rows"), real.get("unique_rows"), real.get("repeats"),
                     pct(real.get("rows") or 0, (mix.get("realised") or {}).get("rows") or 0), real.get("tokens")])
    out = []
    facts = [f"size {size[unit]:,} {unit}" if size.get(unit) else "size from the shares",
             f"short components: {code(spec.get('short', 'error'))}"]
    if spec.get("temperature"):
        facts.append(f"temperature {spec['temperature']}")
    facts.append("components interleaved in a seeded order" if spec.get("shuffle", True) else "components one after another")
    out += [f"The set was drawn from {len(comps)} components ({'; '.join(facts)}):", "",
            table(["component", "from", "share asked", f"{unit} asked", f"{unit} available", "rows drawn", "unique rows",
                   "repeated", "share of the set", "tokens"], rows, ["l", "l", "l", "r", "r", "r", "r", "r", "r", "r"]), ""]
    if mix.get("rows_from_outside"):
        out.append(f"{mix['rows_from_outside']:,} rows came from other runs and entered at the mix; every row not drawn "
                   "is in `rejects.jsonl` with step `mix`.")
    if mix.get("repeats"):
        out.append(f"{mix['repeats']:,} rows are repeats (upsampled); a repeated row counts once in the ledger "
                   "(rows in = rows out − repeats + dropped).")
    return "\n".join(out)


def mix_section(c) -> str:
    mix = c["run"].manifest.get("mix")
    out = ["## Mix composition", ""]
    if not mix:
        out.append("Not run: the manifest has no `mix` block (this set was not built by mixing).")
    else:
        out.append(mix_markdown(mix))
    return "\n".join(out)
