"""`curate ablate`'s results in the card: where its index is, the grid's points, and the trained grid's Pareto front."""

from __future__ import annotations

import json
from pathlib import Path

from curate.card import stats as S
from curate.card.markdown import cell, code, render_results, table
from curate.numbers import fmt

ABLATE_INDEX = Path("ablate") / "index.json"
ABLATE_TRAINED = Path("train") / "pareto.json"  # `curate ablate --train`, beside the grid's index.json
ABLATE_FIT = Path("train") / "fit.json"  # its fitted mixing law and recommended ratio


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
