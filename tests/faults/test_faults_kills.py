"""Kill `curate run` (SIGKILL, no cleanup) at every phase of its work, then check the promises: the output
folder holds the old or the new complete run, the next run recovers and is byte-identical to a clean run,
and no temporary file is left behind."""

from __future__ import annotations

import shutil

import pytest

from tests.faults.fault_helpers import complete_run, curate_run, killed, leftovers, same_run, workspace


@pytest.fixture(scope="module")
def clean_runs(tmp_path_factory):
    """Reference run folders from clean runs in fresh workspaces: the recipe as is, and with seed 4."""
    refs = {}
    for name, args in (("v1", ()), ("v2", ("--set", "seed=4"))):
        ws = workspace(tmp_path_factory.mktemp(f"ref-{name}"))
        assert curate_run(ws, *args).returncode == 0
        refs[name] = ws / "runs" / "out"
    assert not same_run(refs["v1"], refs["v2"])  # the two versions differ, so "old or new" is decidable
    return refs


def _old_run_with_results(ws):
    """A first run, plus results a later command wrote into it."""
    assert curate_run(ws).returncode == 0
    out = ws / "runs" / "out"
    (out / "compare").mkdir()
    (out / "compare" / "results.json").write_text('{"kind": "compare"}')
    (out / "report.html").write_text("<html>report</html>")
    return out


@pytest.mark.parametrize("phase", ["step", "cache-write", "write", "swap", "after-swap"])
def test_a_kill_at_any_phase_leaves_old_or_new_and_the_next_run_recovers(tmp_path, clean_runs, phase):
    ws = workspace(tmp_path / "ws")
    out = _old_run_with_results(ws)
    old = tmp_path / "old-snapshot"
    shutil.copytree(out, old)

    proc = curate_run(ws, "--set", "seed=4", fault=phase)  # v2: other data
    assert killed(proc), proc.stderr

    assert complete_run(out)
    if phase == "after-swap":  # the new folder was already in place; results of other data are gone
        assert same_run(out, clean_runs["v2"])
    else:
        assert same_run(out, old)  # untouched, results included
        assert (out / "compare" / "results.json").read_text() == '{"kind": "compare"}'

    proc = curate_run(ws, "--set", "seed=4")
    assert proc.returncode == 0, proc.stderr
    assert same_run(out, clean_runs["v2"])
    assert leftovers(ws) == []


def test_a_kill_while_results_are_carried_keeps_the_old_folder_whole(tmp_path, clean_runs):
    ws = workspace(tmp_path / "ws")
    out = _old_run_with_results(ws)
    old = tmp_path / "old-snapshot"
    shutil.copytree(out, old)
    proc = curate_run(ws, "--no-cache", fault="carry")  # same data: compare/ and report.html are being carried
    assert killed(proc), proc.stderr
    assert same_run(out, old)
    proc = curate_run(ws)
    assert proc.returncode == 0 and "kept compare, report.html" in proc.stdout.replace("\n", " ")
    assert (out / "report.html").read_text() == "<html>report</html>"
    assert leftovers(ws) == []
    shutil.rmtree(out / "compare"), (out / "report.html").unlink()
    assert same_run(out, clean_runs["v1"])


def test_without_the_atomic_exchange_a_kill_between_the_renames_is_undone_by_the_next_run(tmp_path, clean_runs):
    """Where renameat2(RENAME_EXCHANGE) is not available two renames are used; a kill between them leaves no
    folder at outputs.dir for a moment, and the old one beside it: the next run puts it back first."""
    ws = workspace(tmp_path / "ws")
    out = _old_run_with_results(ws)
    old = tmp_path / "old-snapshot"
    shutil.copytree(out, old)
    no_exchange = {"CURATE_NO_EXCHANGE": "1"}
    proc = curate_run(ws, "--set", "seed=4", fault="between-renames", env=no_exchange)
    assert killed(proc), proc.stderr
    assert not out.exists() and any(x.endswith(".old") for x in leftovers(ws / "runs"))  # the old folder, beside
    proc = curate_run(ws, "--set", "seed=4", "--no-cache", fault="step", env=no_exchange)  # put back at once,
    assert killed(proc)                                                       # before its own work
    assert "restored" in proc.stderr and same_run(out, old)
    assert all(".work-" in x for x in leftovers(ws / "runs"))  # only the scratch folder of the run killed now
    proc = curate_run(ws, "--set", "seed=4", env=no_exchange)
    assert proc.returncode == 0, proc.stderr
    assert same_run(out, clean_runs["v2"])
    assert leftovers(ws) == []


def _descendants(pid: int) -> set[int]:
    import os

    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def test_a_killed_run_leaves_no_worker_processes(tmp_path):
    """Worker processes die with the run (PR_SET_PDEATHSIG): killing curate does not strand them."""
    import os
    import signal
    import subprocess
    import sys
    import time

    ws = workspace(tmp_path / "ws")
    proc = subprocess.Popen([sys.executable, "-m", "curate.cli", "run", "r.yaml", "--workers", "2", "--no-cache",
                             "--set", "executor.part_rows=5"], cwd=ws, env={**os.environ, "CURATE_PAUSE": "step:30"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    for _ in range(100):  # until the pool has started and its workers sleep in their first part
        time.sleep(0.2)
        workers = _descendants(proc.pid)
        if len(workers) >= 4:  # the resource tracker, the fork server and two workers
            break
    time.sleep(1)  # the workers are in their first part now, paused there
    workers = _descendants(proc.pid)
    assert len(workers) >= 4
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for _ in range(50):
        alive = {p for p in workers if os.path.exists(f"/proc/{p}") and "Z" not in open(f"/proc/{p}/stat").read().split()[2]}
        if not alive:
            break
        time.sleep(0.2)
    assert not alive, [open(f"/proc/{p}/cmdline").read().replace("\0", " ")[:100] for p in alive]
