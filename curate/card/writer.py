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

import os
import warnings
from pathlib import Path

from curate.card import stats as S
from curate.card.plots import write_plots
from curate.card.licenses import decide
from curate.card.metadata import card_data, check_metadata
from curate.card.sections import datasheet, overview, preprocessing, statistics
from curate.card.sections.ablate import ABLATE_TRAINED, ablation_index
from curate.card.sections.compare import COMPARE_RESULTS
from curate.card.sections.mix import mix_section
from curate.card.sections.recipe import recipe_section
from curate.card.sections.results import results_section
from curate.specs.card import CardSpec
from curate.errors import CurateError


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
    plots = write_plots(run, out) + _copy_compare_plots(run, out) + _copy_pareto_plot(run, out)
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
        overview.header_section(ctx), overview.summary_section(ctx), datasheet.motivation_section(ctx),
        datasheet.composition_section(ctx), datasheet.collection_section(ctx), preprocessing.preprocessing_section(ctx),
        datasheet.uses_section(ctx), datasheet.distribution_section(ctx), datasheet.maintenance_section(ctx),
        statistics.statistics_section(ctx), mix_section(ctx), results_section(ctx), recipe_section(ctx),
        datasheet.citation_section(ctx),
    ]
    body = "\n\n".join(p.strip() for p in parts if p) + "\n"
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
    # round trip through the Hub library's parser: what it cannot read is a bug here, not a warning
    parsed = DatasetCard(str(card))
    if parsed.data.to_dict() != data.to_dict():
        raise CurateError("the card's metadata does not survive huggingface_hub's parser", "card")
    return str(card), license_notes + lic.warnings
