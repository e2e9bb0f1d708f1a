"""Which rows each training epoch reads, when that is not simply "every row, every epoch".

Two things change it, and both keep the number of optimizer steps of the plain run:

- **Fresh rows per epoch.** A mix component with `resample: per_epoch` (curate.mix) writes one draw per epoch;
  its rows carry `mix_epoch` = k (epoch k only), every other row `mix_epoch` = 0 (every epoch). Epoch k reads the
  rows tagged 0 or k. The mix draws as many rows for each epoch, but the validation split and rows with no answer
  token left after `max_length` can take a few out of one epoch and not another: every epoch is then cut to the
  shortest (a seeded choice of the rows left out, counted in `train.json`), so every epoch has the same length.
- **Stages** (`train.stages: [general, science]`, the `schedule: sequential` axis of `curate ablate`): the mix's
  components one after the other instead of interleaved: all epochs over the first component's rows, then all
  epochs over the next one's; the sequence is then cut into as many equal epochs as the mixed run has, so the
  steps (and the learning-rate schedule) are the same; an epoch boundary may fall inside a stage.

Within an epoch the rows come in a seeded order: a new one per epoch with `reshuffle` (seeded by the run's seed
and the epoch), else one fixed order of all rows that every epoch follows (the setting that shows the staircase).

`plan_epochs` returns None for data with neither (transformers' own sampler then runs as before); otherwise a
`Plan`: per epoch the dataset positions in reading order, which `PlanSampler` hands to the Trainer (the Trainer
tells the sampler the epoch through `set_epoch`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from curate.errors import CurateError


@dataclass
class Plan:
    epochs: list[list[int]]  # per epoch: positions in the encoded training set, in reading order
    info: dict = field(default_factory=dict)  # what train.json records


def plan_epochs(rows: list[dict], encoded: list[dict], spec) -> Plan | None:
    """The epochs' rows for `encoded` (the training rows that survived encoding; `idx`: their position in
    `rows`), or None when every epoch reads every row in the usual way."""
    tags = [int(rows[e["idx"]].get("mix_epoch") or 0) for e in encoded]
    fresh = max(tags, default=0)
    if not fresh and not spec.stages:
        return None
    n_epochs = max(1, math.ceil(spec.epochs))
    if fresh and n_epochs > fresh:
        raise CurateError(f"the data holds fresh rows for {fresh} epochs (its mix's `epochs`), not {n_epochs}: "
                          f"set mix.epochs to {n_epochs} or train for {fresh}", "train.epochs")
    rng = np.random.default_rng(spec.seed)
    rank = rng.permutation(len(encoded))  # the one fixed order of reshuffle: false
    members = [[j for j, t in enumerate(tags) if t in (0, e)] for e in range(1, n_epochs + 1)]
    size = min(len(m) for m in members)
    trimmed = sum(len(m) - size for m in members)
    members = [_cut(m, size, spec.seed, e) for e, m in enumerate(members, 1)]
    info = {"epochs": n_epochs, "rows_per_epoch": size, "trimmed_rows": trimmed}
    if fresh:
        info["fresh_rows_per_epoch"] = sum(1 for t in tags if t == 1)
    if not spec.stages:
        return Plan([_order(m, spec, rank, e) for e, m in enumerate(members, 1)], info)

    comps = [rows[e["idx"]].get("component") for e in encoded]
    if any(c is None for c in comps):
        raise CurateError("stages order the mix's components: the rows have no `component` column (train on a run "
                          "folder written by a recipe with `mix:`)", "train.stages")
    missing = sorted(set(comps) - set(spec.stages))
    if missing:
        raise CurateError(f"the data also has components {missing}: list every component of the mix", "train.stages")
    sequence = []
    for stage in spec.stages:
        for e, m in enumerate(members, 1):
            sequence += _order([j for j in m if comps[j] == stage], spec, rank, e)
    info["stages"] = list(spec.stages)
    return Plan([sequence[k * size:(k + 1) * size] for k in range(n_epochs)], info)


def _cut(member: list[int], size: int, seed: int, epoch: int) -> list[int]:
    if len(member) == size:
        return member
    keep = np.random.default_rng([seed, epoch, 7]).choice(len(member), size, replace=False)
    return [member[i] for i in sorted(keep)]


def _order(member: list[int], spec, rank, epoch: int) -> list[int]:
    if spec.reshuffle:
        return [member[i] for i in np.random.default_rng([spec.seed, epoch]).permutation(len(member))]
    return sorted(member, key=lambda j: rank[j])


def epoch_rows(plan: Plan, encoded: list[dict], rows: list[dict]) -> list[dict]:
    """What the training folder records (`epochs.json`): the ids of the rows each epoch read, in order."""
    return [{"epoch": e, "rows": len(p), "ids": [rows[encoded[j]["idx"]].get("id") for j in p]}
            for e, p in enumerate(plan.epochs, 1)]


def plan_sampler(plan: Plan):
    """A torch sampler that yields epoch k's positions when the Trainer is in epoch k (through `set_epoch`)."""
    from torch.utils.data import Sampler

    class PlanSampler(Sampler):
        def __init__(self):
            self.epoch = 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = int(epoch)

        def __len__(self) -> int:
            return len(plan.epochs[0])

        def __iter__(self):
            return iter(plan.epochs[min(self.epoch, len(plan.epochs) - 1)])

    return PlanSampler()
