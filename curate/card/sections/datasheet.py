"""The Datasheets-for-Datasets sections a run can only partly answer: motivation, composition, collection, uses, distribution, maintenance, citation."""

from __future__ import annotations

from curate.card import stats as S
from curate.card.markdown import cell, code, fence, needed, person, prose, table
from curate.card.metadata import CONFIGS, published_files
from curate.numbers import fmt


def motivation_section(c) -> str:
    spec = c["spec"]
    desc = ((c["run"].manifest.get("recipe") or {}).get("description") or "").strip()
    return "\n".join([
        "## Motivation", "",
        "**For what purpose was the dataset created?** " + person(spec.motivation, "why this set was made and for which task", "motivation"),
        "",
        "**What the recipe says it is:** " + (prose(" ".join(desc.split())) if desc else needed("a description", None)),
        "",
        "**Who created it, on behalf of whom, and who funded it?** " + person(spec.maintainers, "the creators and funders", "maintainers"),
    ])


def composition_section(c) -> str:
    run = c["run"]
    m = run.manifest
    t = m["totals"]
    base = m.get("random_baseline")
    summary = {s["column"]: s for s in S.score_summary(run)}
    cols = run.columns
    described = {
        "id": "hash of the normalised conversation (identical conversations share it)",
        "source": "the recipe source the row came from",
        "messages": "the conversation: a list of `{role, content}` (system / user / assistant)",
        "meta": "the source's other fields and `source_row` (file and record)",
        "text": "the conversation rendered with the chat template",
        "assistant_spans": "`[start, end)` character spans of the assistant turns in `text` (for loss masking)",
    }
    rows = []
    for col in cols:
        if col in described:
            rows.append([f"{code(col)}", described[col]])
        elif col.endswith("_why"):
            rows.append([f"{code(col)}", f"why {code(col[:-4])} is missing for a row (null when it is not)"])
        elif col in summary:
            s = summary[col]
            rows.append([f"{code(col)}", f"score (median {fmt(s['median'])}; missing for {s['missing']:,} rows)"])
        else:
            rows.append([f"{code(col)}", "a label added by a step" + (" (`score.language`: ISO 639 code)" if col == "lang" else "")])
    sample = ""
    sel = [s for s in m["steps"] if s["role"] == "select"]
    if sel:
        last = sel[-1]
        sample = (f"It is a selection: {code(last['label'])} kept {last['rows_out']:,} of the {last['rows_in']:,} rows that "
                  "survived cleaning, filtering and deduplication")
        sample += (f"; a random subset of the same size from the same pool ships beside it ({base['rows']:,} rows)."
                   if base else ".")
    else:
        sample = "It holds every row that passed the steps (no selection step ran)."
    if m.get("mix"):
        mix = m["mix"]
        sample += (f" The set is a mix of {len(mix.get('components') or {})} components drawn at explicit shares: see "
                   "[Mix composition](#mix-composition).")
    missing = [f"{code(s['column'])} ({s['missing']:,})" for s in summary.values() if s["missing"]]
    return "\n".join([
        "## Composition", "",
        f"**What do the instances represent?** Each of the {t['rows_out']:,} rows is one instruction-following "
        "conversation (one or more user turns, each answered by an assistant turn), with the columns below.", "",
        table(["column", "what"], rows), "",
        f"**Is it a sample?** {sample}", "",
        "**Labels:** the assistant turns are the targets; `assistant_spans` marks them in `text`.", "",
        "**Missing values:** " + ("rows a scorer could not score have a null score and the reason in `<column>_why`: "
                                  + ", ".join(missing) + "." if missing else "no score is missing in the kept rows."), "",
        "**Splits:** one (`train`). Per-source counts, lengths, scores and languages are under [Statistics](#statistics).", "",
        "**Does it contain personal, offensive or confidential content?** "
        + person(c["spec"].sensitive_content, "what was checked for, and how", "sensitive_content"),
    ])


def collection_section(c) -> str:
    run = c["run"]
    recipe_sources = (run.manifest.get("recipe") or {}).get("sources") or {}
    rows = []
    for s in S.source_table(run):
        r = recipe_sources.get(s["source"], {})
        origin = []
        if r.get("hub"):
            origin.append(f"[{r['hub']}](https://huggingface.co/datasets/{r['hub']})"
                          + (f" ({r['config']})" if r.get("config") else "") + (f" @ {r['revision']}" if r.get("revision") else ""))
        files = ", ".join(f"{cell(p, 80)} ({code(h)})" if h else cell(p, 80) for p, h in zip(s["inputs"], s["sha256"]))
        rows.append([f"{code(s['source'])}", "; ".join(origin) or "–", files or "–", f"{code(s['adapter'])}", s["rows_read"],
                     s["rows_skipped"]])
    return "\n".join([
        "## Collection process", "",
        "curate collected nothing itself: it read the inputs below (local files by base name, with the first "
        "12 hex digits of their sha256), turned each record into a conversation with the named adapter, and "
        "recorded every record it could not read.", "",
        table(["source", "hub dataset", "input files (sha256)", "adapter", "rows read", "rows skipped"], rows,
              ["l", "l", "l", "l", "r", "r"]), "",
        "**How were the sources themselves collected, and did the people in them consent?** "
        + needed("see each source's own documentation; summarise it here", None),
    ])


def uses_section(c) -> str:
    spec = c["spec"]
    return "\n".join([
        "## Uses", "",
        "**Intended uses:** " + person(spec.intended_uses, "the tasks this set is meant for", "intended_uses"), "",
        "**Out-of-scope uses:** " + person(spec.out_of_scope_uses, "uses this set is not fit for", "out_of_scope_uses"), "",
        "**What did training on it show?** See [Results](#results): the comparison with the matched random baseline "
        "and the ablations, when they were run.",
    ])


def distribution_section(c) -> str:
    run, lic = c["run"], c["lic"]
    rows = [[f"{code(n)}", f"{code(v)}", "yes" if n in lic.non_commercial else "no"] for n, v in lic.per_source.items()]
    out = ["## Distribution", "",
           f"**License:** {code(lic.license)}. "
           + ("No license was recorded for some sources, so the license is unknown. " if lic.unknown else
              "curate cannot rank some source licenses, so the card says `other`. " if lic.unranked else
              "The sources together carry restrictions no single source license has; this is the Creative Commons "
              "license that carries all of them. " if lic.combined else
              "It is the most restrictive of the sources' licenses. ")
           + "Every source's own terms still apply to its rows:", "",
           table(["source", "license", "non-commercial"], rows), ""]
    idle = [s["source"] for s in S.source_table(run) if not s["rows_out"] and s["source"] not in lic.per_source]
    if idle:
        out += ["Sources with no row in the set do not bind it: " + ", ".join(f"{code(n)}" for n in idle) + ".", ""]
    if lic.non_commercial:
        out += ["**Non-commercial:** rows from " + ", ".join(f"{code(n)}" for n in lic.non_commercial)
                + " may only be used for non-commercial purposes; so may the set as a whole.", ""]
    files = published_files(run.dir)
    cfg_rows = [[f"{code(cfg)}", f"{code(x['data_files'][0]['path'])}", files[stem][0]]
                for (cfg, stem), x in zip([p for p in CONFIGS if p[1] in files], c["meta"].get("configs") or [])]
    out += ["**Files** (what `curate publish` uploads, beside this card and its plots):", "",
            table(["config", "file", "format"], cfg_rows), "",
            "`manifest.json` (the resolved recipe, input hashes, per-step counts, library versions) is uploaded too."]
    return "\n".join(out)


def maintenance_section(c) -> str:
    run, spec = c["run"], c["spec"]
    m = run.manifest
    libs = ", ".join(f"{k} {v}" for k, v in (m.get("libraries") or {}).items())
    return "\n".join([
        "## Maintenance", "",
        "**Who maintains it?** " + person(spec.maintainers, "who looks after the set", "maintainers"), "",
        "**How to reach them:** " + person(spec.contact, "a contact address or issue tracker", "contact"), "",
        "**Will it be updated, and how will errors be reported?** " + needed("the update and errata policy", None), "",
        f"**Reproducing it:** the recipe below, run with `curate run` on the same inputs (their sha256 are in "
        f"`manifest.json`), gives byte-identical data. Recipe hash {code(m.get('recipe_hash'))}, seed {m.get('seed')}, "
        f"curate {m.get('curate_version')}, format {m.get('format_version')}; libraries: {libs}.",
    ])


def citation_section(c) -> str:
    spec = c["spec"]
    return "\n".join(["## Citation", "", fence(spec.citation.strip(), "bibtex") if spec.citation and spec.citation.strip()
                      else needed("how to cite this set", "citation")])
