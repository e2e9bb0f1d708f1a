"""A test-only hook for the fault-injection suite (tests/faults/).

`CURATE_FAULT=<phase>[:<n>]` makes the process kill itself (SIGKILL: no cleanup, no finally blocks, as a
power cut or the OOM killer would) the n-th time (default 1st) it reaches `fault_point(<phase>)`. Phases:
`step` (inside a step's work), `cache-write` (half-way through writing a cache entry), `write` (half-way through writing the new run
folder), `swap` (the new run
folder is complete, the old one still in place), `between-renames` (only where the atomic exchange is not
used: `CURATE_NO_EXCHANGE=1`), `after-swap` (the new folder in place, the old one not yet removed),
`carry` (while results of the previous run are being linked into the new folder). Unset, it costs one
dictionary lookup.

`CURATE_FAULT_ONCE=<file>` (with CURATE_FAULT) kills instead the first process of all that see the variable to
reach the phase while <file> does not exist, creating it: the Ray tests kill one worker mid-step (workers
live across runs), and the task Ray runs again must get through.

`CURATE_PAUSE=<phase>:<seconds>` sleeps at the first `fault_point(<phase>)` instead: the tests start a second
run while the first one holds its locks.
"""

from __future__ import annotations

import os
import signal
import time

_seen: dict[str, int] = {}


def fault_point(phase: str) -> None:
    pause = os.environ.get("CURATE_PAUSE")
    if pause and pause.partition(":")[0] == phase and not _seen.get(f"pause:{phase}"):
        _seen[f"pause:{phase}"] = 1
        time.sleep(float(pause.partition(":")[2] or 1))
    wanted = os.environ.get("CURATE_FAULT")
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != phase:
        return
    once = os.environ.get("CURATE_FAULT_ONCE")
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)
    _seen[phase] = _seen.get(phase, 0) + 1
    if _seen[phase] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
