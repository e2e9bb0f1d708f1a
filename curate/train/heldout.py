"""The rows a mix held out (`mix.components.<name>.holdout`), read back from run folders (an ablation grid's points,
or the one run `curate train` trains on) for the eval tasks that name them (`evals.tasks.<task>.heldout: <name>`).

The mix records the held-out ids in each run's manifest and writes the rows to its rejects.jsonl (reason "held
out for evaluation"); the draw depends on the seed and the component only, so every point holds out the same rows,
which is checked here: a grid whose points held out different rows has no common held-out set.
"""

from __future__ import annotations

import json

from curate.errors import CurateError


def grid_heldout(ablate_dir, index: dict, eval_spec) -> dict[str, list[dict]]:
    """component -> its held-out rows for the points of a grid (`index.json`)."""
    return heldout_rows([(p["point"], ablate_dir / p["dir"]) for p in index["points"]], eval_spec)


def heldout_rows(runs: list, eval_spec) -> dict[str, list[dict]]:
    """component -> its held-out rows (canonical rows, in the order the manifest lists them), for every component
    an eval task names, from run folders `runs` ((label, folder) pairs) that must all hold out the same rows; {}
    when no task names one."""
    wanted = {name: t.heldout for name, t in eval_spec.tasks.items() if t.heldout}
    if not wanted:
        return {}
    ids: dict[str, list[str]] = {}
    for label, folder in runs:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        comps = (manifest.get("mix") or {}).get("components") or {}
        for task, comp in wanted.items():
            held = (comps.get(comp) or {}).get("heldout")
            if not held or not held.get("ids"):
                raise CurateError(f"{label} holds out no rows of mix component {comp!r}: set "
                                  f"mix.components.{comp}.holdout", f"evals.tasks.{task}.heldout")
            if comp in ids and held["ids"] != ids[comp]:
                raise CurateError(f"{label} held out other rows of {comp!r} than {runs[0][0]}: the component differs "
                                  "between the runs (rebuild the grid with one recipe)", f"evals.tasks.{task}.heldout")
            ids[comp] = held["ids"]
    first = runs[0][1]
    found: dict[str, dict] = {}
    wanted_ids = {i for v in ids.values() for i in v}
    with open(first / "rejects.jsonl", encoding="utf-8") as f:
        for line in f:
            entry = json.loads(line)
            row = entry.get("row") or {}
            if entry.get("step") == "mix" and row.get("id") in wanted_ids and str(entry.get("reason", "")).startswith("held out"):
                found[row["id"]] = row
    out = {}
    for comp, id_list in ids.items():
        missing = [i for i in id_list if i not in found]
        if missing:
            raise CurateError(f"{len(missing)} held-out rows of {comp!r} are not in rejects.jsonl: the run folder is "
                              "incomplete (rebuild the grid)", str(first))
        out[comp] = [found[i] for i in id_list]
    return out


def check_heldout_unused(eval_spec, command: str) -> None:
    """Fail early in a command that trains on no mix when a task asks for held-out mix rows."""
    for name, t in eval_spec.tasks.items():
        if t.heldout:
            raise CurateError(f"held-out mix rows exist only for a mix (`curate train` or `curate ablate --train` on a "
                              f"recipe with `mix:`), not in `curate {command}`: give the task a `source`",
                              f"evals.tasks.{name}.heldout")
