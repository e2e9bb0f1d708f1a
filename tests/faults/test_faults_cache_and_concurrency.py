"""The step cache is verified on every read, keyed by the steps' code, and shared safely; one run at a
time per output folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import curate.engine.run as engine_run
from curate.cache import StepCache, code_token
from curate.pipeline import Reporter, run_recipe
from curate.recipe import load_recipe
from curate.runfolder import run_folder_lock
from tests.faults.fault_helpers import curate_run, leftovers, same_run, workspace


class Recorder(Reporter):
    def __init__(self):
        self.warnings, self.cached = [], []

    def warning(self, message):
        self.warnings.append(message)

    def step_finished(self, report):
        self.cached.append(report.cached)


def run(ws: Path, *overrides: str, **kw):
    rec = Recorder()
    result = run_recipe(load_recipe(ws / "r.yaml", list(overrides)), reporter=rec, **kw)
    return result, rec


@pytest.fixture
def ws(tmp_path, monkeypatch):
    root = workspace(tmp_path / "ws")
    monkeypatch.chdir(root)
    return root


def _entries(ws: Path) -> list[Path]:
    return sorted(p for p in (ws / "cache").iterdir() if p.is_dir() and not p.name.startswith("."))


def _clean_copy(ws: Path, tmp_path: Path) -> Path:
    run(ws, use_cache=False)
    ref = tmp_path / "ref"
    shutil.copytree(ws / "runs" / "out", ref)
    return ref


def _entry_of(ws: Path, kind: str) -> Path:
    """A cache entry by what it holds: "layer" (a scorer's columns) or "drops" (a filter's decisions)."""
    marker = "layer.json" if kind == "layer" else "drops.arrow"
    return next(p for p in _entries(ws) if (p / marker).exists() and (p / "notes.json").exists())


@pytest.mark.parametrize("damage", ["flip", "truncate", "edit-drops", "edit-notes", "no-index"])
def test_a_damaged_cache_entry_is_recomputed_never_trusted(ws, tmp_path, damage):
    ref = _clean_copy(ws, tmp_path)
    run(ws)  # fills the cache: the loaded rows and one entry per step
    assert len(_entries(ws)) == 6
    victim = _entry_of(ws, "drops" if damage == "edit-drops" else "layer")
    part = victim / ("drops.arrow" if damage == "edit-drops" else "part-00000.arrow")
    if damage == "flip":
        data = bytearray(part.read_bytes())
        for k in range(5):
            data[len(data) // 2 + 7 * k] ^= 0xFF
        part.write_bytes(bytes(data))
    elif damage == "truncate":
        part.write_bytes(part.read_bytes()[: part.stat().st_size // 3])
    elif damage == "edit-drops":  # a planted reject: a valid Arrow file, other content
        import pyarrow as pa

        from curate.engine.store import write_part

        write_part(part, pa.table({"_row": pa.array([0], pa.int64()), "reason": ["planted"],
                                   "duplicate_of": pa.array([None], pa.string()), "detail": pa.array([None], pa.string())}))
    elif damage == "edit-notes":
        notes = victim / "notes.json"
        notes.write_text(notes.read_text().replace('"notes": {', '"notes": {"planted": 1, ', 1))
    else:
        (victim / "entry.json").unlink()
    result, rec = run(ws)
    if damage == "no-index":  # an entry without its index was never finished: recomputed silently
        assert rec.warnings == []
    else:
        assert len(rec.warnings) == 1 and victim.name in rec.warnings[0] and "recomputing" in rec.warnings[0]
    assert rec.cached.count(False) >= 1  # the damaged step ran again
    assert same_run(ws / "runs" / "out", ref)
    assert "planted" not in (ws / "runs" / "out" / "rejects.jsonl").read_text()
    assert "planted" not in (ws / "runs" / "out" / "manifest.json").read_text()
    _, rec = run(ws)  # and the recomputed entry is good again
    assert rec.warnings == [] and all(rec.cached)


def test_editing_a_steps_code_invalidates_its_entries(ws, monkeypatch):
    run(ws)
    _, rec = run(ws)
    assert all(rec.cached)
    from curate.steps.score.heuristics import Heuristics

    real = engine_run.code_token
    monkeypatch.setattr(engine_run, "code_token", lambda cls: real(cls) + ("-edited" if cls is Heuristics else ""))
    _, rec = run(ws)
    # clean, dedup.exact: cached; score.heuristics and every step after it: recomputed
    assert rec.cached == [True, True, False, False, False]


def test_the_code_token_follows_the_module_source(tmp_path, monkeypatch):
    pkg = tmp_path / "curate_probe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    mod = pkg / "probe_step.py"
    mod.write_text("class S:\n    x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    m = importlib.import_module("curate_probe.probe_step")
    monkeypatch.setitem(sys.modules, "curate.probe_step", m)  # counted as one of curate's own modules
    m.S.__module__ = "curate.probe_step"
    first = code_token(m.S)
    assert first == code_token(m.S)
    mod.write_text("class S:\n    x = 2\n")
    m = importlib.reload(m)
    m.S.__module__ = "curate.probe_step"
    assert code_token(m.S) != first


def test_a_cache_temp_folder_of_a_killed_writer_is_removed(ws):
    run(ws)
    stale = ws / "cache" / ".0123456789abcdef01234567.xyz.tmp"
    stale.mkdir()
    (stale / "data.arrow").write_bytes(b"half")
    run(ws)
    assert leftovers(ws) == []


def test_two_runs_on_one_output_folder_the_second_stops_with_a_message(ws):
    with run_folder_lock(ws / "runs" / "out"):
        proc = curate_run(ws)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "is writing this run folder now" in proc.stderr and "runs/out" in proc.stderr
    assert not (ws / "runs" / "out").exists()


def test_a_concurrent_run_stops_and_the_first_one_finishes(ws, tmp_path):
    ref = _clean_copy(ws, tmp_path)
    shutil.rmtree(ws / "runs")
    first = subprocess.Popen([sys.executable, "-m", "curate.cli", "run", "r.yaml", "--no-cache"], cwd=ws,
                             env={**os.environ, "CURATE_PAUSE": "step:4"}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)  # the first run is inside its first step, holding the folder's lock
    second = curate_run(ws)
    assert second.returncode == 2 and "is writing this run folder now" in second.stderr
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert same_run(ws / "runs" / "out", ref)


def test_runs_sharing_a_cache_entry_take_turns_and_the_second_reads_the_first(ws, tmp_path):
    """Two recipes writing to different folders share the cache: while the first computes a step, the second
    waits for that entry and then reads it instead of computing it again."""
    first = subprocess.Popen([sys.executable, "-m", "curate.cli", "run", "r.yaml"], cwd=ws,
                             env={**os.environ, "CURATE_PAUSE": "step:4"}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    second = curate_run(ws, "--set", "outputs.dir=runs/other")
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, (err, second.stderr)
    assert "(cached)" in second.stderr.split("[2/5]")[0]  # its first step came from the first run's entry
    for name in ("data.jsonl", "data.parquet", "rejects.jsonl", "baseline_random.jsonl"):
        assert (ws / "runs" / "out" / name).read_bytes() == (ws / "runs" / "other" / name).read_bytes()


def test_the_cache_store_is_atomic(tmp_path):
    cache = StepCache(tmp_path / "c")
    with pytest.raises(RuntimeError):
        cache.store("k1", lambda folder: (_ for _ in ()).throw(RuntimeError("boom")))
    assert list((tmp_path / "c").iterdir()) == []
    cache.store("k1", lambda folder: (folder / "a.txt").write_text("x"))
    assert cache.load("k1", lambda folder: (folder / "a.txt").read_text()) == "x"
