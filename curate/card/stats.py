"""Statistics of a run folder for the data card and the report, and their PNG plots.

Everything is computed from the run folder alone: `manifest.json`, the kept rows (`data.jsonl`, else
`data.parquet`, else the Arrow folder) and `rejects.jsonl`. Plots use matplotlib's Agg canvas
directly (no pyplot, no global backend switch) and are written without the "Software" PNG metadata
at a fixed size and dpi, so the same run gives byte-identical PNGs on the same machine.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from curate.errors import CurateError
from curate.io import row_for_json
from curate.numbers import is_missing
from curate.runfolder import load_manifest, read_rejects, read_rows

CORE_COLUMNS = ("id", "source", "messages", "meta", "text", "assistant_spans", "raw")
DEDUP_PREFIX = "dedup"
DECONTAMINATE_PREFIX = "filter.decontaminate"
_MIX_COMPONENT = re.compile(r"\(component ([^:()]+):")


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    dir: Path
    manifest: dict
    kept: list[dict]
    rejects: list[dict]
    step_names: dict[str, str] = field(default_factory=dict)  # label -> step name

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def columns(self) -> list[str]:
        return list(self.manifest.get("columns") or (self.kept[0].keys() if self.kept else []))

    def steps_named(self, prefix: str) -> list[str]:
        """The labels of the steps named `prefix` or under it (`dedup` finds `dedup.exact`), whatever name
        (the step's, or an alias) the recipe wrote."""
        from curate.steps.registry import canonical_name

        names = {label: canonical_name(name) for label, name in self.step_names.items()}
        return [label for label, name in names.items() if name == prefix or name.startswith(prefix + ".")
                or name.startswith(prefix + "_")]


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read a run folder; a missing or newer-format manifest is a CurateError."""
    run_dir = Path(run_dir)
    manifest = load_manifest(run_dir)
    for key in ("name", "sources", "steps", "load", "totals"):
        if key not in manifest:
            raise CurateError(f"manifest.json has no {key!r}: not a complete curate run", str(run_dir))
    kept = [row_for_json(r) for r in read_rows(run_dir, "data")]
    rejects = read_rejects(run_dir)
    for e in rejects:
        if isinstance(e.get("row"), dict):
            e["row"] = row_for_json(e["row"])
    step_names = {s["label"]: s["name"] for s in manifest["steps"]}
    return Run(run_dir, manifest, kept, rejects, step_names)


# -- row texts -------------------------------------------------------------------------------------


def prompt_of(row: dict) -> str:
    from curate.rows import prompt_text

    msgs = row.get("messages") or []
    return prompt_text(msgs) if msgs else row.get("raw", "")


def response_of(row: dict) -> str:
    from curate.rows import response_text

    msgs = row.get("messages") or []
    return response_text(msgs) if msgs else ""


def words_of(row: dict) -> int:
    return sum(len(m.get("content", "").split()) for m in row.get("messages") or [])


def number(v) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and not is_missing(v):
        return float(v)
    return None


def score_columns(run: Run) -> list[str]:
    """Numeric columns other than the row itself and the `_why` reasons, in manifest order."""
    out = []
    for col in run.columns:
        if col in CORE_COLUMNS or col.endswith("_why"):
            continue
        values = [r.get(col) for r in run.kept]
        if any(number(v) is not None for v in values) and all(v is None or number(v) is not None for v in values):
            out.append(col)
    return out


def scored_rows(run: Run) -> list[dict]:
    """Kept rows and every dropped row that carries scores (dropped after scoring)."""
    return run.kept + [e["row"] for e in run.rejects if isinstance(e.get("row"), dict) and "messages" in e["row"]]


# -- funnel ------------------------------------------------------------------------------------------


def funnel(run: Run) -> list[dict]:
    """One entry per stage (load, each step, then the mix when there is one): rows in/out/dropped and
    every reason with its count. Rows a mix takes from other runs enter at the mix (`added`); rows it
    repeats leave it more than once (`repeats`).

    Raises CurateError when the manifest does not add up: each stage starts where the last ended
    (plus what it adds), and rows_in == rows_out - repeats + dropped overall."""
    from curate.ledger import reason_group
    from curate.runfolder import funnel_rows

    m = run.manifest
    steps = {s["label"]: s for s in m["steps"]}
    mix = m.get("mix") or {}
    stages = []
    for label, rin, rout, dropped, _ in funnel_rows(m):
        if label in steps:
            s = steps[label]
            reasons, role, name = dict(s["dropped_by_reason"]), s["role"], s["name"]
        else:  # load, and stages after the steps (the mix): reasons from the ledger
            c = Counter(reason_group(e["reason"]) for e in run.rejects if e["step"] == label)
            reasons = dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
            role = name = label
        stage = {"label": label, "name": name, "role": role, "rows_in": rin, "rows_out": rout, "dropped": dropped,
                 "reasons": reasons, "added": 0, "repeats": 0}
        if label == "mix" and label not in steps:
            stage["added"], stage["repeats"] = mix.get("rows_from_outside", 0), mix.get("repeats", 0)
        stages.append(stage)
    check_funnel(m, stages)
    return stages


def check_funnel(manifest: dict, stages: list[dict]) -> None:
    t = manifest["totals"]
    prev = manifest["load"]["rows_read"]
    for s in stages:
        if s["rows_in"] != prev + s["added"] or s["rows_in"] - s["rows_out"] + s["repeats"] != s["dropped"]:
            raise CurateError(f"the manifest's funnel does not add up at {s['label']!r}", "manifest.json")
        if s["reasons"] and sum(s["reasons"].values()) != s["dropped"]:
            raise CurateError(f"the drop reasons of {s['label']!r} do not sum to its dropped rows", "manifest.json")
        prev = s["rows_out"]
    repeats = t.get("repeats", 0)
    if (prev != t["rows_out"] or sum(s["dropped"] for s in stages) != t["dropped"]
            or t["rows_in"] != manifest["load"]["rows_read"] + sum(s["added"] for s in stages)
            or t["rows_in"] != t["rows_out"] - repeats + t["dropped"]):
        raise CurateError("the manifest's funnel does not sum to its totals", "manifest.json")


# -- sources -----------------------------------------------------------------------------------------


def _component_manifest(kind: str, where: str, run_dir: Path) -> dict | None:
    """The manifest of a mix component that came from another run folder or recipe, when it can be found."""
    from curate.runfolder import load_manifest

    try:
        if kind == "recipe":
            from curate.recipe import load_recipe

            folder = load_recipe(where).output_dir()
        else:
            folder = Path(where)
        return load_manifest(folder)
    except (CurateError, OSError, ValueError):
        return None


def outside_components(run: Run) -> dict[str, dict]:
    """Mix components taken from other runs or recipes: name -> {kind, where, rows, manifest or None}."""
    mix = run.manifest.get("mix") or {}
    spec = (mix.get("spec") or {}).get("components") or ((run.manifest.get("recipe") or {}).get("mix") or {}).get("components") or {}
    out = {}
    for name, comp in spec.items():
        kind = "run" if comp.get("run") else "recipe" if comp.get("recipe") else None
        if kind is None:
            continue
        realised = ((mix.get("components") or {}).get(name) or {}).get("realised") or {}
        out[name] = {"kind": kind, "where": comp[kind], "rows": realised.get("rows", 0),
                     "manifest": _component_manifest(kind, comp[kind], run.dir)}
    return out


def source_table(run: Run) -> list[dict]:
    """Per source: rows read, skipped, dropped per step, kept; words and tokens of the kept rows.

    Sources of mix components from other runs follow this recipe's own, named `component/source`,
    with the license their own run recorded ("unknown" when that run cannot be found)."""
    drops: dict[tuple, Counter] = defaultdict(Counter)
    for e in run.rejects:
        row = e.get("row") or {}
        component = row.get("component")
        if component is None and e["step"] == "mix":  # rows the mix did not draw name their component in the reason
            found = _MIX_COMPONENT.search(e.get("reason", ""))
            component = found.group(1) if found else None
        drops[(component, row.get("source"))][e["step"]] += 1
    words: Counter = Counter()
    tokens: Counter = Counter()
    kept: Counter = Counter()
    has_tokens = "n_tokens" in run.columns
    for r in run.kept:
        key = (r.get("component"), r["source"])
        kept[key] += 1
        words[key] += words_of(r)
        if has_tokens and number(r.get("n_tokens")) is not None:
            tokens[key] += int(r["n_tokens"])
    outside = outside_components(run)

    def merged(counter, source, component=None):
        if component is not None:
            return counter.get((component, source), 0)
        return sum(v for (c, s), v in counter.items() if s == source and c not in outside)

    def merged_drops(source, component=None):
        total: Counter = Counter()
        for (c, s), cnt in drops.items():
            if s == source and (c == component if component is not None else c not in outside):
                total.update(cnt)
        return dict(total)

    out = []
    for name, info in run.manifest["sources"].items():
        out.append({
            "source": name, "component": None, "adapter": info.get("adapter"), "license": info.get("license") or "unknown",
            "rows_read": info["rows_read"], "rows_skipped": info["rows_skipped"], "rows_out": info.get("rows_out", 0),
            "dropped_by_step": merged_drops(name), "words": merged(words, name),
            "tokens": merged(tokens, name) if has_tokens else None,
            "inputs": [display_path(i.get("path", "")) for i in info.get("inputs", [])],
            "sha256": [i.get("sha256", "")[:12] for i in info.get("inputs", [])],
        })
    for comp, c in outside.items():
        theirs = (c["manifest"] or {}).get("sources") or {}
        names = sorted({s for (cc, s) in list(kept) + list(drops) if cc == comp}, key=lambda s: (s not in theirs, s))
        for src in names:
            d = merged_drops(src, comp)
            out.append({
                "source": f"{comp}/{src}", "component": comp, "adapter": None,
                "license": (theirs.get(src) or {}).get("license") or "unknown",
                "rows_read": kept[(comp, src)] + sum(d.values()), "rows_skipped": 0, "rows_out": kept[(comp, src)],
                "dropped_by_step": d, "words": words[(comp, src)], "tokens": tokens[(comp, src)] if has_tokens else None,
                "inputs": [f"{c['kind']} {display_path(c['where'])}"], "sha256": [""],
            })
    return out


def display_path(p: str) -> str:
    """URLs and hub ids stay; local file paths become their base name (no machine paths in cards)."""
    if not isinstance(p, str) or re.match(r"^[a-z][a-z0-9+.-]*://", p) or p.startswith("hf://"):
        return p
    return os.path.basename(p.rstrip("/\\")) or p


def card_licenses(run: Run) -> tuple[dict[str, str | None], list[str]]:
    """{source: license} of every source with rows in the set (every source when none has), and notes."""
    table = source_table(run)
    contributing = [s for s in table if s["rows_out"] > 0] or table
    notes = [f"mix component {name!r} ({c['kind']} {c['where']}): its run folder was not found, so the license "
             "of its rows is unknown" for name, c in outside_components(run).items() if c["manifest"] is None and c["rows"]]
    return {s["source"]: (None if s["license"] == "unknown" else s["license"]) for s in contributing}, notes


# -- scores ------------------------------------------------------------------------------------------


def quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def score_summary(run: Run) -> list[dict]:
    out = []
    for col in score_columns(run):
        vals = sorted(v for v in (number(r.get(col)) for r in run.kept) if v is not None)
        n_missing = len(run.kept) - len(vals)
        if not vals:
            continue
        out.append({"column": col, "rows": len(vals), "missing": n_missing, "mean": sum(vals) / len(vals),
                    "min": vals[0], "p25": quantile(vals, 0.25), "median": quantile(vals, 0.5),
                    "p75": quantile(vals, 0.75), "max": vals[-1]})
    return out


def language_mix(run: Run) -> dict | None:
    """{"kept": {lang: n}, "scored": {lang: n}} from the `lang` column, or None when no language step ran."""
    if "lang" not in run.columns:
        return None
    kept = Counter((r.get("lang") or "(none)") for r in run.kept)
    scored = Counter((r.get("lang") or "(none)") for r in scored_rows(run) if "lang" in r)
    order = lambda c: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))  # noqa: E731
    return {"kept": order(kept), "scored": order(scored)}


def measured_languages(run: Run, min_share: float = 0.01) -> list[str] | None:
    mix = language_mix(run)
    if not mix or not run.kept:
        return None
    langs = [lang for lang, n in mix["kept"].items() if lang != "(none)" and n / len(run.kept) >= min_share]
    return langs or None


# -- duplicates and contamination ---------------------------------------------------------------------


def _brief(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {"id": row.get("id"), "source": row.get("source"), "prompt": prompt_of(row), "response": response_of(row)}


class _KeptLookup:
    """Find the row a duplicate was dropped in favour of: kept in the output, or dropped by a later step."""

    def __init__(self, run: Run):
        self.kept = {r["id"]: r for r in run.kept}
        order = {label: i for i, label in enumerate(run.step_names)}
        self.later: dict[str, list[tuple[int, str, dict]]] = defaultdict(list)
        for e in run.rejects:
            row = e.get("row") or {}
            if "id" in row:
                self.later[row["id"]].append((order.get(e["step"], -1), e["step"], row))
        self.order = order

    def find(self, row_id: str, step: str) -> tuple[dict | None, str]:
        if row_id in self.kept:
            return self.kept[row_id], "kept in the output"
        here = self.order.get(step, -1)
        for i, label, row in self.later.get(row_id, []):
            if i > here:
                return row, f"kept here, dropped later by {label}"
        return None, "not found"


def duplicates(run: Run, n_examples: int = 3, max_clusters: int | None = None) -> list[dict]:
    """Per dedup step (or any step whose drops name a `duplicate_of`): counts, clusters and examples."""
    labels = run.steps_named(DEDUP_PREFIX)
    labels += [s for s in dict.fromkeys(e["step"] for e in run.rejects if e.get("duplicate_of")) if s not in labels]
    labels.sort(key=lambda label: list(run.step_names).index(label) if label in run.step_names else 1 << 30)
    lookup = _KeptLookup(run)
    out = []
    for label in labels:
        entries = [e for e in run.rejects if e["step"] == label]
        clusters: dict[str, list[dict]] = {}
        for e in entries:
            clusters.setdefault(e.get("duplicate_of") or "", []).append(e)
        ordered = sorted(clusters.items(), key=lambda kv: -len(kv[1]))  # stable: first seen among equals
        if max_clusters is not None:
            ordered = ordered[:max_clusters]
        shown = []
        for kept_id, members in ordered:
            kept_row, fate = lookup.find(kept_id, label) if kept_id else (None, "no duplicate_of")
            shown.append({"kept_id": kept_id, "kept": _brief(kept_row), "kept_fate": fate,
                          "dropped": [dict(_brief(e["row"]), reason=e["reason"], detail=e.get("detail") or {})
                                      for e in members]})
        by_reason = Counter(e["reason"] for e in entries)
        out.append({"step": label, "name": run.step_names.get(label, label), "dropped": len(entries),
                    "clusters": len(clusters), "by_reason": dict(by_reason.most_common()),
                    "examples": shown[:n_examples], "clusters_shown": shown})
    return out


def contamination(run: Run, n_examples: int = 3) -> list[dict] | None:
    """Per decontamination step: the eval sets it checked, rows dropped by eval set and by reason, and
    examples (the row, the eval row it overlapped, the shared n-gram or the similarity); None when no
    such step ran."""
    labels = run.steps_named(DECONTAMINATE_PREFIX)
    if not labels:
        return None
    notes = {s["label"]: s.get("notes") or {} for s in run.manifest["steps"]}
    out = []
    for label in labels:
        entries = [e for e in run.rejects if e["step"] == label]
        by_set = Counter((e.get("detail") or {}).get("eval_set", "?") for e in entries)
        out.append({"step": label, "dropped": len(entries), "eval_sets": notes[label].get("eval_sets") or {},
                    "by_check": notes[label].get("dropped_by_check") or {},
                    "items_by_check": notes[label].get("by_check") or {},  # how each eval set's items were looked for
                    "too_short": notes[label].get("too_short"),
                    "by_eval_set": dict(sorted(by_set.items(), key=lambda kv: (-kv[1], kv[0]))),
                    "by_reason": dict(Counter(e["reason"] for e in entries).most_common()),
                    "examples": [dict(_brief(e["row"]), reason=e["reason"], detail=e.get("detail") or {})
                                 for e in entries[:n_examples]]})
    return out


def to_json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)
