"""The card's Hub metadata: the YAML header (DatasetCardData), its configs and files, and the offline check of what the Hub would reject."""

from __future__ import annotations

import re
from pathlib import Path

from curate.card import stats as S
from curate.card.licenses import HUB_LICENSES, LicenseDecision
from curate.specs.card import CardSpec
from curate.runfolder import data_files

SIZE_CATEGORIES = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
                   "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T")
CONFIGS = (("default", "data"), ("random_baseline", "baseline_random"))
PREFERRED_FORMATS = ("parquet", "jsonl", "arrow")


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
