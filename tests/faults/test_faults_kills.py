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
