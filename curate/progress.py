"""Progress bars for the steps' row loops: a rich bar on an interactive terminal, silent otherwise
(tests, CI, pipes), and only for inputs large enough to take a noticeable time."""

from __future__ import annotations

import sys
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


@contextmanager
def progress(total: int, description: str, min_rows: int = MIN_ROWS):
    """Yields `advance(k)`; a no-op when no bar is shown."""
    if total < min_rows or _quiet or not sys.stderr.isatty():
        yield lambda k: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("      {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda k: bar.advance(task, k)


def track(items: Iterable, total: int, description: str) -> Iterator:
    """Iterate `items`, advancing a bar by one per item."""
    with progress(total, description) as advance:
        for item in items:
            yield item
            advance(1)
