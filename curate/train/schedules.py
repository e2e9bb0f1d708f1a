"""Learning-rate schedules for `train.schedule`, as torch schedulers stepped once per optimizer step.

- `cosine`: linear warmup to the peak, then cosine decay to 0 (transformers' `cosine` schedule).
- `onecycle`: `torch.optim.lr_scheduler.OneCycleLR`: from peak/25 up to the peak over `warmup` of the
  steps, then cosine annealing to peak/1e5 (one peak per run; momentum is not cycled, so every schedule
  uses the same AdamW betas).
- `cyclic`: `torch.optim.lr_scheduler.CyclicLR`, triangular, one cycle per epoch: from `min_ratio` x peak up
  to the peak over the first half of the epoch's steps and back down over the second half — the schedule of
  the seed experiment, under which each epoch starts at a low learning rate.
- `constant`: the peak after an optional linear warmup.
"""

from __future__ import annotations

import math


def make_scheduler(name: str, optimizer, *, total_steps: int, steps_per_epoch: int, warmup: float = 0.0,
                   min_ratio: float = 0.1):
    """A torch LR scheduler over `total_steps` optimizer steps; the optimizer's lr is the peak."""
    import torch
    from transformers import get_scheduler

    total_steps = max(int(total_steps), 1)
    warmup_steps = math.ceil(total_steps * warmup) if warmup else 0
    peak = optimizer.param_groups[0]["lr"]
    if name == "cosine":
        return get_scheduler("cosine", optimizer=optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)
    if name == "constant":
        return get_scheduler("constant_with_warmup", optimizer=optimizer, num_warmup_steps=warmup_steps)
    if name == "onecycle":
        # at least one step up; total_steps + 1 so that the last step never runs past the schedule
        pct = min(max(warmup, 1.0 / total_steps), 0.99)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peak, total_steps=total_steps + 1, pct_start=pct, anneal_strategy="cos",
            cycle_momentum=False, div_factor=25.0, final_div_factor=1e4,
        )
    if name == "cyclic":
        per_epoch = max(int(steps_per_epoch), 1)
        up = max(per_epoch // 2, 1)
        down = max(per_epoch - up, 1)
        return torch.optim.lr_scheduler.CyclicLR(
            optimizer, base_lr=peak * min_ratio, max_lr=peak, step_size_up=up, step_size_down=down,
            mode="triangular", cycle_momentum=False,
        )
    raise ValueError(f"unknown schedule {name!r}")


def lr_trace(name: str, total_steps: int, steps_per_epoch: int, peak: float = 1e-3, warmup: float = 0.0,
             min_ratio: float = 0.1) -> list[float]:
    """The learning rate of each optimizer step under a schedule (for tests and plots)."""
    import torch

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=peak)
    sched = make_scheduler(name, opt, total_steps=total_steps, steps_per_epoch=steps_per_epoch, warmup=warmup,
                           min_ratio=min_ratio)
    out = []
    for _ in range(total_steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out
