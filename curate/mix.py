"""Mixing: named components at explicit ratios, with a stated policy for components that run short.

A component's share is exactly one of:
- `fraction`: its share of the final mix (all components then use fractions, which sum to 1, and
  `size` says how large the mix is, in rows or tokens);
- `count`: an absolute number of rows;
- `of_component`: a share of that component's own rows.
With `temperature: T` the shares come from the component sizes instead: p_i ∝ n_i^(1/T)
(T = 1 is proportional to size, large T tends to uniform).

When a component has fewer rows (or tokens) than its share asks for, `short` decides:
`error` (the default: nothing changes silently), `upsample` (repeat the component: whole passes in
a seeded order, then a seeded part-pass) or `shrink` (the whole mix shrinks until every component
fits, keeping the requested ratio).

Quotas in rows are met exactly; quotas in tokens are met to within one row (rows are taken in a
seeded order while they fit). Every row not drawn goes to the ledger with step `mix`.

Two more component keys serve training on the mix (curate ablate --train):
- `holdout: N` sets N seeded rows of the component aside before anything is drawn: the same rows at every
  share and size (the draw depends on the seed and the component's name only), so no point of an ablation
  grid trains on them; they go to the ledger with a "held out" reason and an eval task names them with
  `heldout: <component>` (curate.specs.evals).
- `resample: per_epoch` draws the component's share afresh for each of `mix.epochs` training epochs: epoch k
  takes the next rows of one seeded order of the component, so no row repeats while the component has rows
  left (epochs x share of them); after that the order starts again (a row is reused only once every row has
  been used) and the manifest counts the reused rows. A component with fewer rows than one epoch's share
  is settled by `short` as before. The rows carry `mix_epoch` (0: every epoch, k: epoch k only), which
  training reads (curate.train.epochs).
"""

from __future__ import annotations

import json

import numpy as np

from curate.errors import CurateError
from curate.io import row_for_json
from curate.ledger import Drop
from curate.specs.mix import Component, MixSpec
from curate.seeds import derive_seed

CANONICAL = ["id", "source", "messages", "meta"]


# -- the mix ----------------------------------------------------------------------------------------


def largest_remainder(total: int, weights: list[float]) -> list[int]:
    """Integers proportional to `weights` that sum exactly to `total` (ties to the earlier one)."""
    w = np.asarray(weights, dtype=float)
    if total == 0 or w.sum() == 0:
        return [0] * len(weights)
    raw = w / w.sum() * total
    base = np.floor(raw).astype(int)
    order = sorted(range(len(w)), key=lambda i: (-(raw[i] - base[i]), i))
    for i in order[: total - int(base.sum())]:
        base[i] += 1
    return [int(x) for x in base]




def apply_mix(spec: MixSpec, components: dict[str, "object"], seed: int, where: str = "mix"):
    """Draw the mix. `components` maps name -> Dataset. Returns (mixed Dataset, drops, info)."""
    from datasets import concatenate_datasets

    names = list(spec.components)
    by_tokens = spec.size is not None and spec.size.tokens is not None
    for n in names:
        if len(components[n]) == 0:
            raise CurateError("the component has no rows (check its source and the steps before the mix)", f"{where}.components.{n}")
    components, drops, held = _hold_out(spec, components, seed, where)
    costs = {n: _costs(components[n], spec, n, where) for n in names}
    available = {n: int(costs[n].sum()) for n in names}  # rows, or tokens

    quotas, requested = _quotas(spec, names, available, {n: len(components[n]) for n in names})
    quotas = _settle_short(spec, names, quotas, available, where)

    picked, epoch_of, info = {}, {}, {}
    for n in names:
        ds, cost = components[n], costs[n]
        rng = np.random.default_rng(derive_seed(seed, "mix", n))
        per_epoch = spec.components[n].resample == "per_epoch"
        if per_epoch:  # epoch k: the next quota rows of one seeded stream of passes
            idx = _draw(len(ds), cost, quotas[n] * spec.epochs, False, rng)
            epoch_of[n] = np.repeat(np.arange(1, spec.epochs + 1), quotas[n])
        else:
            idx = _draw(len(ds), cost, quotas[n], by_tokens, rng)
            epoch_of[n] = np.zeros(len(idx), dtype=np.int64)
        picked[n] = idx
        chosen = set(idx.tolist())
        not_drawn = [i for i in range(len(ds)) if i not in chosen]
        reason = Drop(reason=f"not drawn by the mix (component {n}: {len(chosen)} of {len(ds)} rows)")
        drops += _drop_entries(ds, not_drawn, reason)
        info[n] = {
            "requested": requested[n],
            "available": {"rows": len(ds), **({"tokens": available[n]} if by_tokens else {})},
            "realised": {"rows": len(idx), "unique_rows": len(chosen), "repeats": len(idx) - len(chosen),
                         "tokens": int(cost[idx].sum()) if by_tokens or _has_tokens(ds, spec) else None},
        }
        if per_epoch:
            info[n]["resample"] = {"epochs": spec.epochs, "rows_per_epoch": quotas[n],
                                   "fresh_epochs": min(spec.epochs, len(ds) // quotas[n]) if quotas[n] else spec.epochs,
                                   "reused_rows": len(idx) - len(chosen)}
        if n in held:
            info[n]["heldout"] = held[n]
    resampling = any(c.resample == "per_epoch" for c in spec.components.values())
    parts = []
    common = _common_columns([components[n] for n in names])
    for n in names:
        part = components[n].select(picked[n]).select_columns(common)
        part = part.add_column("component", [n] * len(part))
        if resampling:  # which epoch trains on the row: 0 every epoch, k only the k-th
            part = part.add_column("mix_epoch", [int(e) for e in epoch_of[n]])
        parts.append(part)
    mixed = concatenate_datasets(parts) if parts else components[names[0]].select([])
    if spec.shuffle and len(mixed):
        mixed = mixed.select(np.random.default_rng(derive_seed(seed, "mix", "__order__")).permutation(len(mixed)).tolist())
    per_epoch_rows = {n: (quotas[n] if spec.components[n].resample == "per_epoch" else len(picked[n])) for n in names}
    epoch_total = sum(per_epoch_rows.values())
    summary = {
        "spec": spec.model_dump(mode="json", exclude_none=True),
        "components": info,
        "realised": {"rows": len(mixed),
                     "shares": {n: round(per_epoch_rows[n] / epoch_total, 6) if epoch_total else 0 for n in names}},
        "repeats": sum(v["realised"]["repeats"] for v in info.values()),
    }
    if resampling:
        summary["realised"]["rows_per_epoch"] = epoch_total
    if by_tokens:
        summary["realised"]["tokens"] = sum(v["realised"]["tokens"] for v in info.values())
    return mixed, drops, summary


def _hold_out(spec: MixSpec, components: dict, seed: int, where: str) -> tuple[dict, list[dict], dict]:
    """Set each component's `holdout` rows aside: a seeded draw from the component alone (its seed and name,
    never the shares), so every point of a grid holds out the same rows. Returns (the components less those
    rows, their ledger entries, name -> {"rows", "ids"})."""
    out, drops, held = dict(components), [], {}
    for n, c in spec.components.items():
        if not c.holdout:
            continue
        ds = components[n]
        if c.holdout >= len(ds):
            raise CurateError(f"holds out {c.holdout} rows but the component has {len(ds)}", f"{where}.components.{n}.holdout")
        order = np.random.default_rng(derive_seed(seed, "mix", f"{n}:holdout")).permutation(len(ds))
        aside = sorted(int(i) for i in order[: c.holdout])
        keep = sorted(int(i) for i in order[c.holdout:])
        reason = Drop(reason=f"held out for evaluation ({where}.components.{n}.holdout: {c.holdout} rows no draw uses)")
        drops += _drop_entries(ds, aside, reason)
        held[n] = {"rows": len(aside), "ids": [str(x) for x in ds.select(aside)["id"]] if "id" in ds.column_names else []}
        out[n] = ds.select(keep)
    return out, drops, held


def _costs(ds, spec: MixSpec, name: str, where: str) -> np.ndarray:
    if spec.size is None or spec.size.tokens is None:
        return np.ones(len(ds), dtype=np.int64)
    col = spec.size.token_column
    if col not in ds.column_names:
        raise CurateError(f"a mix size in tokens needs the column {col!r} in every component; add a score.tokens step",
                          f"{where}.components.{name}")
    return np.asarray(ds[col], dtype=np.int64)


def _has_tokens(ds, spec) -> bool:
    return spec.size is not None and spec.size.token_column in ds.column_names


def _quotas(spec: MixSpec, names, available, rows) -> tuple[dict, dict]:
    """Each component's quota (rows or tokens) as requested, before any shortfall is settled."""
    comps = spec.components
    if spec.temperature is not None or any(comps[n].share_kind == "fraction" for n in names):
        total = spec.size.rows if spec.size.rows is not None else spec.size.tokens
        if spec.temperature is not None:
            weights = [rows[n] ** (1 / spec.temperature) for n in names]
            shares = [w / sum(weights) for w in weights]
        else:
            shares = [comps[n].fraction for n in names]
        q = largest_remainder(total, shares) if spec.size.rows is not None else [round(s * total) for s in shares]
        unit = "rows" if spec.size.rows is not None else "tokens"
        return dict(zip(names, q)), {n: {"fraction": round(s, 6), unit: qq} for n, s, qq in zip(names, shares, q)}
    quotas, requested = {}, {}
    for n in names:
        c = comps[n]
        quotas[n] = c.count if c.share_kind == "count" else int(round(c.of_component * rows[n]))
        requested[n] = {c.share_kind: getattr(c, c.share_kind), "rows": quotas[n]}
    return quotas, requested


def _settle_short(spec: MixSpec, names, quotas, available, where) -> dict:
    short = {n: (quotas[n], available[n]) for n in names if quotas[n] > available[n]}
    if not short or spec.short == "upsample":
        return quotas
    unit = "tokens" if spec.size is not None and spec.size.tokens is not None else "rows"
    if spec.short == "error":
        n, (want, have) = next(iter(short.items()))
        raise CurateError(f"needs {want} {unit} but has {have} (short: error); set short: upsample or shrink, "
                          "or ask for less", f"{where}.components.{n}")
    # shrink: the largest total whose proportional split fits every component
    total = sum(quotas.values())
    weights = [quotas[n] for n in names]
    factor = min(have / want for want, have in short.values())
    new_total = int(np.floor(total * factor))
    while new_total > 0:
        q = dict(zip(names, largest_remainder(new_total, weights)))
        if all(q[n] <= available[n] for n in names):
            return q
        new_total -= 1
    raise CurateError("the mix shrinks to nothing: a component with a share has no rows", where)


def _draw(n: int, cost: np.ndarray, quota: int, by_tokens: bool, rng: np.random.Generator) -> np.ndarray:
    """Indices of the rows drawn: whole seeded passes while the quota exceeds the component, then a
    seeded part-pass; in tokens, rows are taken in order while they fit."""
    if n == 0 or quota == 0:
        return np.asarray([], dtype=np.int64)
    if not by_tokens:
        passes, rest = divmod(quota, n)
        idx = [rng.permutation(n) for _ in range(passes)]
        idx.append(rng.permutation(n)[:rest])
        return np.concatenate(idx).astype(np.int64)
    taken, spent = [], 0
    while True:
        for i in rng.permutation(n):
            if spent + cost[i] > quota:
                return np.asarray(taken, dtype=np.int64)
            taken.append(int(i))
            spent += int(cost[i])
        if spent == 0:  # every row costs 0 tokens: nothing more to add
            return np.asarray(taken, dtype=np.int64)


def _common_columns(datasets) -> list[str]:
    first = datasets[0].column_names
    return [c for c in first if all(c in d.column_names for d in datasets[1:])]


def _drop_entries(ds, indices, drop: Drop) -> list[dict]:
    if not indices:
        return []
    rows = ds.select(indices).to_list()
    return [{"step": "mix", "reason": drop.reason, "row": row_for_json(row)} for row in rows]


def component_datasets(spec: MixSpec, ds, recipe, recipe_dir: str, where: str = "mix",
                       run_component=None) -> tuple[dict, int, list[dict]]:
    """The rows of each component. Returns (name -> Dataset, rows read from outside this run,
    ledger entries for this run's rows that belong to no component)."""
    from datasets import Dataset

    comps, outside = {}, 0
    used_sources = set()
    sources = list(ds["source"])
    for name, c in spec.components.items():
        if c.source is not None:
            if c.source not in recipe.sources:
                from curate.errors import did_you_mean

                raise CurateError(f"no source {c.source!r} in this recipe{did_you_mean(c.source, recipe.sources)}",
                                  f"{where}.components.{name}.source")
            comps[name] = ds.select([i for i, s in enumerate(sources) if s == c.source])
            used_sources.add(c.source)
        else:
            comps[name] = Dataset.from_list(_rows_of(c, recipe_dir, f"{where}.components.{name}", run_component))
            outside += len(comps[name])
    unused = [i for i, s in enumerate(sources) if s not in used_sources]
    drops = []
    if unused:
        rows = ds.select(unused).to_list()
        drops = [{"step": "mix", "reason": f"source {r['source']} is not a mix component", "row": row_for_json(r)}
                 for r in rows]
    return comps, outside, drops


def _rows_of(c: Component, recipe_dir: str, where: str, run_component) -> list[dict]:
    """Canonical rows (and token counts) of a run folder or a sub-recipe's output (run with
    `run_component(path, overrides)`, which returns its run folder)."""
    from pathlib import Path

    if c.recipe is not None:
        run_dir = run_component(Path(c.recipe), c.overrides)
    else:
        run_dir = Path(c.run)
    from curate.runfolder import data_files, read_rows

    if not data_files(run_dir):
        raise CurateError(f"{run_dir} has no data.parquet, data.jsonl or data/ (run its recipe first)", where)
    rows = read_rows(run_dir)
    keep = [k for k in (*CANONICAL, "n_tokens") if rows and k in rows[0]]
    out = []
    for r in rows:
        r = {k: r[k] for k in keep}
        if isinstance(r.get("meta"), dict):
            r["meta"] = json.dumps(r["meta"], ensure_ascii=False, sort_keys=True)
        out.append(r)
    return out


def mix_hook(recipe, run_component):
    """The engine's `finish` hook for a recipe with `mix:`: the curated rows (read into memory: a mix is
    made of selections, not of whole pools) become the mix; rows left out go to the ledger."""
    import pyarrow as pa
    from datasets import Dataset

    from curate.engine.run import Finished

    def finish(rows) -> Finished:
        tables = list(rows())
        ds = Dataset(pa.concat_tables(tables).combine_chunks()) if tables else Dataset.from_list([])
        rows_before = len(ds)
        components, outside, unused = component_datasets(recipe.mix, ds, recipe, recipe.base_dir,
                                                         run_component=run_component)
        mixed, mix_drops, info = apply_mix(recipe.mix, components, recipe.seed)
        info["rows_in"] = rows_before + outside
        info["rows_from_outside"] = outside
        info["dropped"] = len(unused) + len(mix_drops)
        table = mixed.with_format("arrow")[:]
        batches = [table.slice(i, 8192) for i in range(0, table.num_rows, 8192)]
        return Finished(rows=batches, dropped=unused + mix_drops, rows_from_outside=outside,
                        repeats=info["repeats"], manifest=info, name="mix")

    return finish
