"""The training loss log: collected from the Trainer's callbacks (`LossLog`, `callback`), written as loss.csv
and read back (`read_log`).

`loss.csv` has one row per event, `kind,step,epoch,loss,learning_rate,grad_norm,tokens_seen`: kind `train` (every
optimizer step), `eval` (the validation loss) and `epoch_end` (the last step of each epoch).
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

LOG_FIELDS = ("kind", "step", "epoch", "loss", "learning_rate", "grad_norm", "tokens_seen")


class LossLog:
    """Collects the loss log from the Trainer's callbacks; also times the optimizer steps."""

    def __init__(self, progress):
        self.log: list[dict] = []
        self.progress = progress
        self.tokens = 0
        self.label_tokens = 0
        self.step_seconds = 0.0
        self._t0 = None
        self.last_eval_step = None
        self.seen: list[list[int]] = []  # row indices of each training batch (record_order)

    def rows(self) -> list[dict]:
        return list(self.log)

    def add(self, row: dict) -> None:
        row = {k: row.get(k) for k in LOG_FIELDS}
        self.log.append(row)
        if self.progress:
            self.progress(row)


def callback(sink: LossLog):
    """A transformers callback that feeds `sink` (transformers is imported only here)."""
    from transformers import TrainerCallback

    class LossLogCallback(TrainerCallback):
        def __init__(self, sink: LossLog):
            self.sink = sink

        def on_step_begin(self, args, state, control, **kw):
            self.sink._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if self.sink._t0 is not None:
                self.sink.step_seconds += time.perf_counter() - self.sink._t0
                self.sink._t0 = None

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" in logs:
                self.sink.add({"kind": "train", "step": state.global_step, "epoch": round(state.epoch or 0, 4),
                               "loss": float(logs["loss"]), "learning_rate": logs.get("learning_rate"),
                               "grad_norm": logs.get("grad_norm"), "tokens_seen": self.sink.tokens})
            if "eval_loss" in logs:
                self.sink.last_eval_step = state.global_step
                self.sink.add({"kind": "eval", "step": state.global_step, "epoch": round(state.epoch or 0, 4),
                               "loss": float(logs["eval_loss"]), "tokens_seen": self.sink.tokens})

        def on_epoch_end(self, args, state, control, **kw):
            self.sink.add({"kind": "epoch_end", "step": state.global_step, "epoch": round(state.epoch or 0, 4),
                           "tokens_seen": self.sink.tokens})

    return LossLogCallback(sink)


def write_log(path: Path, log: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        w.writeheader()
        for row in log:
            w.writerow({k: ("" if row.get(k) is None else row[k]) for k in LOG_FIELDS})


def read_log(path: str | os.PathLike) -> list[dict]:
    """The rows of a loss.csv (numbers parsed; empty cells None)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            parsed = {"kind": row["kind"]}
            for k in LOG_FIELDS[1:]:
                v = row.get(k, "")
                parsed[k] = None if v == "" else (int(float(v)) if k in ("step", "tokens_seen") else float(v))
            out.append(parsed)
    return out
