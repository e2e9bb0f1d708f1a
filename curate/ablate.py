"""`curate ablate RECIPE`: build one dataset per point of the recipe's `ablate:` grid.

A point is the recipe with some values changed: a general:domain ratio (the components' fractions),
a mix size, and any other recipe values listed in `grid` (every combination). Each point is a full
run with its own manifest, in `<ablate.dir>/<point>/`; the steps before the mix come from the cache,
so a grid costs little more than its mixes. `index.json` and `index.md` list the points with the
composition each one realised; `curate ablate --train` then fine-tunes every point
(curate.train.grid.train_ablation).
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import shutil
from pathlib import Path

from curate.errors import CurateError
from curate.io import write_json_atomic, write_text_atomic


def grid_points(recipe, raw: dict) -> list[tuple[str, dict, dict]]:
    """(point id, overrides shown in the index, the point's raw recipe) for every grid point."""
    spec = recipe.ablate
    if spec is None:
        raise CurateError("the recipe has no `ablate:` section (ratios, sizes or grid)", "ablate")
    axes: list[list[tuple[str, dict]]] = []
    if spec.ratios:
        axes.append([_ratio_point(recipe, spec, r) for r in spec.ratios])
    if spec.sizes:
        if recipe.mix is None or recipe.mix.size is None:
            raise CurateError("`sizes` change mix.size: the recipe's mix needs a size (rows or tokens)", "ablate.sizes")
        unit = "rows" if recipe.mix.size.rows is not None else "tokens"
        axes.append([(f"size{n}", {f"mix.size.{unit}": n}) for n in spec.sizes])
    for path, values in spec.grid.items():
        axes.append([(f"{path.rsplit('.', 1)[-1]}{_slug(v)}", {path: v}) for v in values])
    if spec.schedule:
        if recipe.mix is None:
            raise CurateError("a schedule orders the mix's components: the recipe needs a `mix:` section", "ablate.schedule")
        general = general_component(recipe)
        stages = [general] + [n for n in recipe.mix.components if n != general]
        axes.append([(f"schedule-{s}", {"train.stages": None if s == "mixed" else stages}) for s in spec.schedule])
    if not axes:
        raise CurateError("the ablate section lists no ratios, sizes, schedules or grid values", "ablate")
    points = []
    for combo in itertools.product(*axes):
        name = "_".join(n for n, _ in combo)
        changes = {k: v for _, c in combo for k, v in c.items()}
        points.append((name, changes, _apply(raw, changes)))
    return points


def general_component(recipe) -> str:
    """The mix component whose share r the fitted law is a function of: `ablate.general`, else `general`, else the
    first of `ablate.components` (or of the mix)."""
    names = list(recipe.mix.components) if recipe.mix else []
    spec = recipe.ablate
    if spec.general is not None:
        if spec.general not in names:
            raise CurateError(f"no mix component {spec.general!r}; the mix has {names}", "ablate.general")
        return spec.general
    if "general" in names:
        return "general"
    order = spec.components or names
    if not order:
        raise CurateError("the fit needs a mix: the recipe has no `mix:` components", "ablate.general")
    return order[0]


def _ratio_point(recipe, spec, ratio: str) -> tuple[str, dict]:
    if recipe.mix is None:
        raise CurateError("ratios set the mix's component fractions: the recipe needs a `mix:` section", "ablate.ratios")
    names = spec.components or list(recipe.mix.components)
    unknown = [n for n in names if n not in recipe.mix.components]
    if unknown:
        raise CurateError(f"no mix components {unknown}; the mix has {list(recipe.mix.components)}", "ablate.components")
    parts = [float(x) for x in ratio.split(":")]
    if len(parts) != len(names):
        raise CurateError(f"ratio {ratio!r} has {len(parts)} numbers for {len(names)} components {names}", "ablate.ratios")
    total = sum(parts)
    changes = {f"mix.components.{n}.fraction": p / total for n, p in zip(names, parts)}
    return "ratio" + "-".join(_slug(p) for p in parts), changes


def _apply(raw: dict, changes: dict) -> dict:
    from curate.recipe import apply_override

    point = copy.deepcopy(raw)
    for key, value in changes.items():
        if key.startswith("mix.components.") and key.endswith(".fraction"):
            comp = point["mix"]["components"][key.split(".")[2]]
            comp.pop("count", None), comp.pop("of_component", None)  # a fraction replaces the other shares
            comp["fraction"] = value
        else:
            apply_override(point, f"{key}={_yaml(value)}")
    point.pop("ablate", None)
    return point


def _yaml(value) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _slug(v) -> str:
    text = f"{v:g}" if isinstance(v, float) else str(v)
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def run_ablation(recipe_path: str, overrides: list[str] | None = None, reporter=None, notice=None) -> Path:
    """Build every grid point; `reporter(i, n, name)` before each, `notice(message)` for what the user should
    know (stale training results removed). Returns the ablation folder."""
    from curate.pipeline import run_recipe
    from curate.runfolder import data_digest
    from curate.recipe import load_raw, validate_recipe

    raw = load_raw(recipe_path, overrides)
    recipe = validate_recipe(copy.deepcopy(raw), where=str(recipe_path))
    out = Path(recipe.ablate.dir if recipe.ablate and recipe.ablate.dir else f"runs/{recipe.name}-ablate")
    points = grid_points(recipe, raw)
    # validate every point before running any: a bad point fails the grid, not half of it
    checked = []
    for name, changes, point_raw in points:
        point_raw.setdefault("outputs", {})["dir"] = str(out / name)
        checked.append((name, changes, validate_recipe(point_raw, where=f"{recipe_path} (ablate point {name})")))
    index = []
    general = general_component(recipe) if recipe.mix else None
    for i, (name, changes, point) in enumerate(checked):
        if reporter:
            reporter(i, len(checked), name)
        result = run_recipe(point, recipe_dir=str(Path(recipe_path).parent))
        m = result.manifest
        share = point.mix.components[general].fraction if general else None  # r of the fit (null: no fractions)
        index.append({"point": name, "changes": changes, "dir": name, "rows": m["totals"]["rows_out"],
                      "general_share": share,
                      "mix": {n: c["realised"] for n, c in (m.get("mix") or {}).get("components", {}).items()},
                      "recipe_hash": m["recipe_hash"], "data_sha256": data_digest(result.out_dir)})
    _drop_stale_training(out, index, notice)
    comps = recipe.ablate.components or (list(recipe.mix.components) if recipe.mix else [])
    write_json_atomic(out / "index.json", {"recipe": recipe.name, "general": {"component": general, "components": comps},
                                           "points": index})
    write_text_atomic(out / "index.md", _markdown(recipe.name, index))
    return out


def _drop_stale_training(out: Path, index: list[dict], notice) -> None:
    """`curate ablate --train`'s results (out/train) describe the grid they were trained on: when the rebuilt grid
    has other points or other data, they no longer apply and are removed."""
    trained, old_index = out / "train", out / "index.json"
    if not trained.exists():
        return
    try:
        old = json.loads(old_index.read_text(encoding="utf-8"))["points"]
    except (OSError, ValueError, KeyError):
        old = None

    def key(points):
        return [(p.get("point"), p.get("data_sha256")) for p in points]

    if old is None or key(old) != key(index):
        shutil.rmtree(trained)
        if notice:
            notice(f"removed {trained}: the grid's data changed, so its training results no longer apply")


def _markdown(name: str, index: list[dict]) -> list[str]:
    comps = sorted({c for p in index for c in p["mix"]})
    head = ["point", "rows", *[f"{c} rows" for c in comps], "changes"]
    lines = [f"# Ablation grid: {name}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in index:
        cells = [p["point"], str(p["rows"]), *[str(p["mix"].get(c, {}).get("rows", "")) for c in comps],
                 ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in p["changes"].items())]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
