"""`curate card`: the data card of a run folder, `data_cards/<name>/README.md`, with its PNG plots.

The card is a Hugging Face dataset card: YAML metadata built with `huggingface_hub`'s
`DatasetCardData` (license, language, task_categories, size_categories, source_datasets, configs),
then the Datasheets-for-Datasets sections (motivation, composition, collection, preprocessing with
the step-by-step funnel, uses, distribution, maintenance), statistics, mix composition, compare and
ablation results, and the recipe. Every number comes from the run folder. What only a person can
write is taken from the recipe's `card:` section or marked "[More Information Needed]", never made up.

The card is deterministic (no dates, no timings, no machine paths: local files appear by base name),
so committed cards only change when the run does.

Results other commands leave behind, rendered when present and marked "Not run" otherwise:
- the manifest's `mix` block (`curate run` with a `mix:` section): a table per component of what was
  asked, available and drawn; the licenses of components taken from other runs are read from those
  runs' manifests;
- `RUN_DIR/compare/results.json` (`curate compare`): `{"conditions": [subset, random, full],
  "metrics": {name: {"role", "higher_is_better", "base", "by_condition": {cond: {"mean", "ci": [lo, hi]}}}},
  ...}` becomes one row per metric; the PNGs beside it are copied next to the card as compare-*.png;
  any other JSON is rendered as it is (scalars as a list, lists of objects as tables);
  a `curate compare` file (`"kind": "compare"`) also gives the conditions' rows, the summary (domain gain,
  general retention, final train loss, staircase score) and the held-out set, and leaves runs and settings
  in the file;
- `curate ablate`'s `index.json` (`RUN_DIR/ablate/`, the recipe's `ablate.dir`, or `<name>-ablate/`
  beside the run folder): `{"points": [{"point", "rows", "mix": {component: {"rows"}}, "changes"}]}`
  becomes one row per grid point; `train/pareto.json` beside it (`curate ablate --train`) adds domain gain,
  general retention and the Pareto front per point, with `pareto.png` copied as ablate-pareto.png;
  `train/fit.json` the fitted mixing law and the recommended general share (curate.card.fit), with `fit.png`
  copied as ablate-fit.png.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import yaml

from curate.card import stats as S
from curate.card.licenses import HUB_LICENSES, LicenseDecision, decide
from curate.card.spec import CardSpec
from curate.errors import CurateError
from curate.numbers import fmt
from curate.runfolder import data_files

NEEDED = "[More Information Needed]"
SIZE_CATEGORIES = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
                   "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T")
COMPARE_RESULTS = Path("compare") / "results.json"
ABLATE_INDEX = Path("ablate") / "index.json"
ABLATE_TRAINED = Path("train") / "pareto.json"  # `curate ablate --train`, beside the grid's index.json
ABLATE_FIT = Path("train") / "fit.json"  # its fitted mixing law and recommended ratio
CONFIGS = (("default", "data"), ("random_baseline", "baseline_random"))
PREFERRED_FORMATS = ("parquet", "jsonl", "arrow")


class CardWarning(UserWarning):
    """Something the card cannot know (a missing license) or had to approximate; printed, not fatal."""


# -- entry point ---------------------------------------------------------------------------------------


def require_card_extra() -> None:
    """The card needs huggingface_hub and matplotlib (the `card` extra): say so instead of a traceback."""
    import importlib.util

    missing = [m for m in ("huggingface_hub", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise CurateError(f"data cards and reports need {' and '.join(missing)}: pip install 'curate[card]'")


def write_card(run_dir: str | os.PathLike, spec: CardSpec | None = None, out_dir: str | os.PathLike | None = None,
               repo_id: str | None = None, report: bool | None = None) -> Path:
    """Write README.md and its PNG plots into `out_dir` (default: `spec.dir`, else data_cards/<name>).

    `spec` defaults to the `card:` section of the recipe recorded in the run's manifest. With
    `report` (default: `spec.report`) the HTML report is written into the run folder too.
    Returns the path of the README.md written."""
    require_card_extra()
    run = S.load_run(run_dir)
    spec = spec if spec is not None else spec_from_manifest(run.manifest)
    out = Path(out_dir) if out_dir is not None else Path(spec.dir or f"data_cards/{run.name}")
    if out.exists() and not out.is_dir():
        raise CurateError("the card's folder is a file", str(out))
    out.mkdir(parents=True, exist_ok=True)
    plots = S.write_plots(run, out) + _copy_compare_plots(run, out) + _copy_pareto_plot(run, out)
    text, notes = build_card(run, spec, plots=plots, repo_id=repo_id)
    for msg in notes:
        warnings.warn(msg, CardWarning, stacklevel=2)
    from curate.io import write_text_atomic

    write_text_atomic(out / "README.md", [text.rstrip("\n")])
    if report if report is not None else spec.report:
        from curate.card.report import write_report

        write_report(run_dir)
    return out / "README.md"


def _copy_compare_plots(run: S.Run, out: Path) -> list[str]:
    """The PNGs `curate compare` left in RUN_DIR/compare, beside the card as compare-<name>.png."""
    import shutil

    for old in out.glob("compare-*.png"):
        old.unlink()
    folder = run.dir / COMPARE_RESULTS.parent
    if not (folder / COMPARE_RESULTS.name).is_file():
        return []
    names = []
    for png in sorted(folder.glob("*.png")):
        shutil.copyfile(png, out / f"compare-{png.name}")
        names.append(f"compare-{png.name}")
    return names


def _copy_pareto_plot(run: S.Run, out: Path) -> list[str]:
    """`curate ablate --train`'s pareto.png and fit.png, beside the card as ablate-pareto.png and ablate-fit.png."""
    import shutil

    index = ablation_index(run)
    names = []
    for name in ("pareto.png", "fit.png"):
        (out / f"ablate-{name}").unlink(missing_ok=True)
        png = index.parent / ABLATE_TRAINED.parent / name if index is not None else None
        if png is not None and png.is_file():
            shutil.copyfile(png, out / f"ablate-{name}")
            names.append(f"ablate-{name}")
    return names


def spec_from_manifest(manifest: dict) -> CardSpec:
    raw = (manifest.get("recipe") or {}).get("card") or {}
    known = {k: v for k, v in raw.items() if k in CardSpec.model_fields}  # a newer curate may know more keys
    try:
        return CardSpec.model_validate(known)
    except Exception as e:  # noqa: BLE001 - pydantic's message names the field
        raise CurateError(f"the recipe's card section is not valid: {e}", "manifest.json") from None


# -- metadata --------------------------------------------------------------------------------------------


def size_category(n: int) -> str:
    bounds = [10 ** k for k in range(3, 13)]
    for cat, bound in zip(SIZE_CATEGORIES, bounds):
        if n < bound:
            return cat
    return SIZE_CATEGORIES[-1]


def published_files(run_dir: Path) -> dict[str, tuple[str, list[Path]]]:
    """{config stem: (format, [paths in the run folder])}: one format per stem, parquet first, the
    Hub's native format; jsonl, then the Arrow folder's .arrow files otherwise."""
    out = {}
    for _, stem in CONFIGS:
        found = data_files(Path(run_dir), stem)
        for kind in PREFERRED_FORMATS:
            if kind in found:
                path = found[kind]
                files = sorted(p for p in path.iterdir() if p.suffix in (".arrow", ".json")) if kind == "arrow" else [path]
                out[stem] = (kind, files)
                break
    return out


def configs(run_dir: Path) -> list[dict]:
    files = published_files(run_dir)
    out = []
    for config, stem in CONFIGS:
        if stem not in files:
            continue
        fmt, _ = files[stem]
        pattern = f"{stem}/*.arrow" if fmt == "arrow" else f"{stem}.{fmt}"
        out.append({"config_name": config, "data_files": [{"split": "train", "path": pattern}]})
    return out


def card_data(run: S.Run, spec: CardSpec, lic: LicenseDecision):
    from huggingface_hub import DatasetCardData

    recipe_sources = (run.manifest.get("recipe") or {}).get("sources") or {}
    hub_ids = [s["hub"] for s in recipe_sources.values() if isinstance(s, dict) and s.get("hub")]
    language = spec.language or S.measured_languages(run) or ["en"]
    extra = {}
    if lic.license == "other":
        extra["license_name"] = re.sub(r"[^a-z0-9.-]+", "-", "-and-".join(sorted(set(lic.per_source.values()))))[:96]
    tags = list(dict.fromkeys(["curate", *spec.tags]))
    return DatasetCardData(
        pretty_name=spec.pretty_name or run.name,
        license=lic.license,
        language=language,
        task_categories=list(spec.task_categories),
        task_ids=list(spec.task_ids) or None,
        size_categories=[size_category(run.manifest["totals"]["rows_out"])],
        source_datasets=hub_ids or None,
        tags=tags,
        configs=configs(run.dir) or None,
        **extra,
    )


def check_metadata(data: dict) -> list[str]:
    """What the Hub's metadata validator would reject, as far as it can be known offline."""
    problems = []
    lic = data.get("license")
    for item in lic if isinstance(lic, list) else [lic]:
        if item not in HUB_LICENSES:
            problems.append(f"license {item!r} is not a Hub license id")
    if lic == "other" and not data.get("license_name"):
        problems.append("license 'other' needs license_name")
    for cat in data.get("size_categories") or []:
        if cat not in SIZE_CATEGORIES:
            problems.append(f"size_categories {cat!r} is not one of {SIZE_CATEGORIES}")
    for code in data.get("language") or []:
        if not isinstance(code, str) or not re.fullmatch(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*", code):
            problems.append(f"language {code!r} is not an ISO 639 code")
    for key in ("task_categories", "task_ids", "tags", "source_datasets", "language", "size_categories"):
        if key in data and not (isinstance(data[key], list) and all(isinstance(x, str) for x in data[key])):
            problems.append(f"{key} must be a list of strings")
    names = set()
    for c in data.get("configs") or []:
        if not isinstance(c, dict) or not isinstance(c.get("config_name"), str) or not c.get("data_files"):
            problems.append(f"config {c!r} needs config_name and data_files")
            continue
        if c["config_name"] in names:
            problems.append(f"config {c['config_name']!r} appears twice")
        names.add(c["config_name"])
        for f in c["data_files"]:
            if not (isinstance(f, dict) and isinstance(f.get("split"), str) and isinstance(f.get("path"), (str, list))):
                problems.append(f"config {c['config_name']!r}: data_files entries are {{split, path}}")
    if not isinstance(data.get("pretty_name", ""), str):
        problems.append("pretty_name must be a string")
    return problems


# -- markdown helpers ------------------------------------------------------------------------------------


def cell(value, limit: int | None = None) -> str:
    """A value inside a markdown table cell: one line, pipes and HTML escaped."""
    text = fmt(value) if not isinstance(value, str) else value
    text = " ".join(text.split())
    if limit and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def code(value) -> str:
    """`value` as an inline code span, whatever it holds: code spans never render HTML, a backtick inside
    gets a longer fence, pipes are escaped for tables and line breaks become spaces."""
    text = " ".join(str(value).split()).replace("|", "\\|")
    ticks = "`"
    while ticks in text:
        ticks += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def prose(value) -> str:
    """Text from the recipe put into the card as prose: markdown stays, HTML is escaped."""
    return str(value).strip().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def table(header: list[str], rows: list[list], align: list[str] | None = None) -> str:
    align = align or ["l"] * len(header)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(c if isinstance(c, str) else cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def needed(what: str, field: str | None = None) -> str:
    how = f"; set `card.{field}` in the recipe" if field else ""
    return f"{NEEDED} _(only a person can write this: {what}{how})_"


def person(value: str | None, what: str, field: str) -> str:
    return prose(value) if value and value.strip() else needed(what, field)


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "–"


def _fence(text: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


# -- the card --------------------------------------------------------------------------------------------


def build_card(run: S.Run, spec: CardSpec, plots: list[str] | None = None,
               repo_id: str | None = None) -> tuple[str, list[str]]:
    """(README.md text, warnings). Raises CurateError if the metadata would not pass the Hub."""
    from huggingface_hub import DatasetCard

    per_source, license_notes = S.card_licenses(run)
    lic = decide(per_source)
    data = card_data(run, spec, lic)
    problems = check_metadata(data.to_dict())
    if problems:
        raise CurateError("the card's metadata would be rejected by the Hub: " + "; ".join(problems), "card")
    stages = S.funnel(run)
    ctx = {"run": run, "spec": spec, "lic": lic, "stages": stages, "plots": set(plots or []),
           "repo_id": repo_id or spec.repo_id, "meta": data.to_dict()}
    parts = [
        _header(ctx), _summary(ctx), _motivation(ctx), _composition(ctx), _collection(ctx), _preprocessing(ctx),
        _uses(ctx), _distribution(ctx), _maintenance(ctx), _statistics(ctx), _mix(ctx), _results(ctx),
        _recipe(ctx), _citation(ctx),
    ]
    body = "\n\n".join(p.strip() for p in parts if p) + "\n"
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
    # round trip through the Hub library's parser: what it cannot read is a bug here, not a warning
    parsed = DatasetCard(str(card))
    if parsed.data.to_dict() != data.to_dict():
        raise CurateError("the card's metadata does not survive huggingface_hub's parser", "card")
    return str(card), license_notes + lic.warnings


def _header(c) -> str:
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
    return _fence("\n".join(lines), "python")


def _summary(c) -> str:
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


def _motivation(c) -> str:
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


def _composition(c) -> str:
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


def _collection(c) -> str:
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


def _params_text(name: str, params: dict) -> str:
    """The parameters of a step that differ from its defaults, compactly."""
    defaults = {}
    try:
        from pydantic_core import PydanticUndefined

        from curate.registry import get_step

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


def _preprocessing(c) -> str:
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


def _uses(c) -> str:
    spec = c["spec"]
    return "\n".join([
        "## Uses", "",
        "**Intended uses:** " + person(spec.intended_uses, "the tasks this set is meant for", "intended_uses"), "",
        "**Out-of-scope uses:** " + person(spec.out_of_scope_uses, "uses this set is not fit for", "out_of_scope_uses"), "",
        "**What did training on it show?** See [Results](#results): the comparison with the matched random baseline "
        "and the ablations, when they were run.",
    ])


def _distribution(c) -> str:
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


def _maintenance(c) -> str:
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


def _statistics(c) -> str:
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


# -- mix, results, recipe ----------------------------------------------------------------------------------


def render_results(obj, depth: int = 0) -> str:
    """Any JSON result as markdown: scalars as a list, lists of flat objects as tables, the rest as JSON."""
    if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        keys = list(dict.fromkeys(k for x in obj for k in x))
        return table([cell(k) for k in keys], [[cell(x.get(k)) if not isinstance(x.get(k), (dict, list)) else
                                                cell(json.dumps(x.get(k), ensure_ascii=False), 80) for k in keys] for x in obj])
    if isinstance(obj, dict):
        scalars = [f"- **{cell(k)}:** {cell(v)}" for k, v in obj.items() if not isinstance(v, (dict, list))]
        nested = []
        for k, v in obj.items():
            if isinstance(v, (dict, list)):
                if depth >= 2:
                    nested.append(f"- **{cell(k)}:** {code(cell(json.dumps(v, ensure_ascii=False), 200))}")
                elif isinstance(v, list) and not any(isinstance(x, dict) for x in v):
                    nested.append(f"- **{cell(k)}:** " + ", ".join(cell(x) for x in v))
                else:
                    nested.append(f"**{cell(k)}**\n\n" + render_results(v, depth + 1))
        return "\n".join(scalars) + ("\n\n" if scalars and nested else "") + "\n\n".join(nested)
    return _fence(json.dumps(obj, ensure_ascii=False, indent=2), "json")


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


def _mix(c) -> str:
    mix = c["run"].manifest.get("mix")
    out = ["## Mix composition", ""]
    if not mix:
        out.append("Not run: the manifest has no `mix` block (this set was not built by mixing).")
    else:
        out.append(mix_markdown(mix))
    return "\n".join(out)


def ablation_index(run: S.Run) -> Path | None:
    """The `curate ablate` index of this recipe: RUN_DIR/ablate/index.json, the recipe's ablate.dir,
    or runs/<name>-ablate beside the run folder."""
    recipe = run.manifest.get("recipe") or {}
    candidates = [run.dir / ABLATE_INDEX]
    if (recipe.get("ablate") or {}).get("dir"):
        candidates.append(Path(recipe["ablate"]["dir"]) / "index.json")
    candidates.append(run.dir.parent / f"{run.name}-ablate" / "index.json")
    return next((p for p in candidates if p.is_file()), None)


def ablation_markdown(index: dict) -> str:
    points = index.get("points") if isinstance(index, dict) else None
    if not isinstance(points, list) or not all(isinstance(p, dict) and "point" in p for p in points):
        return render_results(index)
    comps = list(dict.fromkeys(cname for p in points for cname in (p.get("mix") or {})))
    rows = []
    for p in points:
        mix = p.get("mix") or {}
        changes = ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in (p.get("changes") or {}).items())
        rows.append([f"{code(p['point'])}", p.get("rows"), *[(mix.get(cname) or {}).get("rows") for cname in comps], cell(changes, 120)])
    return "\n".join([f"`curate ablate` built {len(points)} variants of this recipe (each a full run with its own manifest):", "",
                      table(["point", "rows", *[f"{code(x)} rows" for x in comps], "changes"], rows,
                            ["l", "r", *["r"] * len(comps), "l"])])


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CurateError(f"cannot read the {what}: {e}", str(path)) from None


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


def trained_grid_markdown(result: dict) -> str:
    """`curate ablate --train`'s pareto.json: one row per grid point, domain gain against general retention."""
    points = result.get("points") if isinstance(result, dict) else None
    if not isinstance(points, list) or not all(isinstance(p, dict) and "point" in p for p in points):
        return render_results(result)
    rows = [[f"{code(p['point'])}", p.get("rows"), fmt(p.get("domain_gain")), fmt(p.get("general_retention")),
             "yes" if p.get("pareto") else ""] for p in points]
    return "\n".join([
        f"Each point fine-tuned ({len(result.get('seeds') or [])} seed(s)) and evaluated: "
        f"x = domain gain ({cell((result.get('x') or {}).get('definition', ''))}), "
        f"y = general retention ({cell((result.get('y') or {}).get('definition', ''))}). "
        f"The Pareto front: {', '.join(f'{code(x)}' for x in result.get('front') or []) or 'none'}.", "",
        table(["point", "rows", "domain gain", "general retention", "on the front"], rows, ["l", "r", "r", "r", "l"])])


def _results(c) -> str:
    run = c["run"]
    out = ["## Results", "", "### Compared with the random baseline", ""]
    cmp_path = run.dir / COMPARE_RESULTS
    if cmp_path.is_file():
        results = _read_json(cmp_path, "compare results")
        if not (isinstance(results, dict) and results.get("kind") == "compare"):  # compare's own file says what it is
            out += ["Means over seeds, with their confidence intervals in brackets:" if isinstance(results, dict) and "metrics" in results
                    else "From `compare/results.json`:", ""]
        out.append(compare_markdown(results))
        for png in sorted(c["plots"]):
            if png.startswith("compare-"):
                out += ["", f"![{png[8:-4]}]({png})"]
    else:
        out.append(f"Not run: the run folder has no {code(COMPARE_RESULTS.as_posix())} (written by `curate compare`).")
    out += ["", "### Ablations", ""]
    abl_path = ablation_index(run)
    if abl_path is not None:
        out.append(ablation_markdown(_read_json(abl_path, "ablation index")))
        trained = abl_path.parent / ABLATE_TRAINED
        if trained.is_file():
            out += ["", trained_grid_markdown(_read_json(trained, "trained ablation results"))]
            if "ablate-pareto.png" in c["plots"]:
                out += ["", "![domain gain against general retention](ablate-pareto.png)"]
        fitted = abl_path.parent / ABLATE_FIT
        if fitted.is_file():  # the mixing law fitted to the trained grid (curate.card.fit)
            from curate.card.fit import fit_markdown

            out += ["", "#### The fitted ratio", "", fit_markdown(_read_json(fitted, "fitted mixing law"))]
            if "ablate-fit.png" in c["plots"]:
                out += ["", "![the fitted mixing law per metric](ablate-fit.png)"]
    else:
        out.append(f"Not run: no `curate ablate` index ({code(ABLATE_INDEX.as_posix())} in the run folder, or "
                   f"`{run.name}-ablate/index.json` beside it).")
    return "\n".join(out)


PATH_KEYS = {"path", "jinja_file"}
MAYBE_PATH_KEYS = {"tokenizer", "dir", "run", "recipe"}


def scrub_paths(obj, key: str | None = None):
    """Local paths as base names (source paths always; tokenizers and folders when absolute or relative)."""
    if isinstance(obj, dict):
        return {k: scrub_paths(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrub_paths(v, key) for v in obj]
    if isinstance(obj, str) and key in PATH_KEYS:
        return S.display_path(obj)
    if isinstance(obj, str) and key in MAYBE_PATH_KEYS and (os.path.isabs(obj) or obj.startswith(("./", "../", "~"))):
        return S.display_path(obj)
    return obj


def _drop_nulls(obj):
    if isinstance(obj, dict):
        return {k: _drop_nulls(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_nulls(v) for v in obj]
    return obj


def recipe_yaml(manifest: dict) -> str:
    recipe = _drop_nulls(scrub_paths(manifest.get("recipe") or {}))
    if isinstance(recipe.get("description"), str):
        recipe["description"] = " ".join(recipe["description"].split())
    return yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True, width=100)


def _recipe(c) -> str:
    return "\n".join([
        "## The recipe", "",
        "As resolved by curate (defaults filled in, empty values left out, local paths by base name):", "",
        _fence(recipe_yaml(c["run"].manifest), "yaml"),
    ])


def _citation(c) -> str:
    spec = c["spec"]
    return "\n".join(["## Citation", "", _fence(spec.citation.strip(), "bibtex") if spec.citation and spec.citation.strip()
                      else needed("how to cite this set", "citation")])
