"""Progress bars for the steps' row loops: a rich bar on an interactive terminal, silent otherwise
(tests, CI, pipes), and only for inputs large enough to take a noticeable time (or, with rates, for the
model scorers' batches)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterable, Iterator

MIN_ROWS = 2_000  # below this a step finishes in well under a second on 2 cores
_quiet = 0  # > 0 while the engine runs steps part by part: it shows one bar for the whole pass


@contextmanager
def quiet():
    """No step-level bars inside this block."""
    global _quiet
    _quiet += 1
    try:
        yield
    finally:
        _quiet -= 1


def _bar(*more_columns):
    """A transient rich bar on stderr: description, bar, done/total, then `more_columns`."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(TextColumn("      {task.description}"), BarColumn(), MofNCompleteColumn(), *more_columns,
                    console=Console(stderr=True), transient=True)


@contextmanager
def progress(total: int, description: str, min_rows: int = MIN_ROWS):
    """Yields `advance(k)`; a no-op when no bar is shown."""
    if total < min_rows or _quiet or not sys.stderr.isatty():
        yield lambda k: None
        return
    from rich.progress import TimeElapsedColumn

    with _bar(TimeElapsedColumn()) as bar:
        task = bar.add_task(description, total=total)
        yield lambda k: bar.advance(task, k)


@contextmanager
def rate_progress(total: int, total_tokens: int, description: str):
    """Yields `advance(sequences, tokens)`; a bar with sequences/s and tokens/s on a terminal. For the model
    scorers, whose every batch takes long: shown for any size, also inside `quiet()`."""
    if total == 0 or not sys.stderr.isatty():
        yield lambda k, t: None
        return
    from rich.progress import TextColumn, TimeElapsedColumn, TimeRemainingColumn

    started = time.perf_counter()
    done = {"seq": 0, "tok": 0}
    with _bar(TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()) as bar:
        task = bar.add_task(f"{description} ({total_tokens:,} tokens)", total=total, rate="")

        def advance(k: int, t: int) -> None:
            done["seq"] += k
            done["tok"] += t
            dt = max(time.perf_counter() - started, 1e-9)
            bar.update(task, advance=k, rate=f"{done['seq'] / dt:.1f} seq/s {done['tok'] / dt:,.0f} tok/s")

        yield advance


def track(items: Iterable, total: int, description: str) -> Iterator:
    """Iterate `items`, advancing a bar by one per item."""
    with progress(total, description) as advance:
        for item in items:
            yield item
            advance(1)
