"""The no-embedding lima_style pipeline at scale: wall, CPU, peak memory, cache and run-folder size.

    python bench/bench_scale.py [SIZES ...] [--workers auto] [--old REV] [--runs cold,warm]

For each size N (default 73000 300000 1000000) a pool is made once with bench/make_pool.py (in
bench/.cache/pool-N) and `curate run` is timed in a fresh process: `cold` starts from an empty step cache
(and fills it, as a first run does), `warm` runs again with the cache from `cold`, `nocache` passes
--no-cache. Peak RSS is the largest sum of the resident memory of the run's process and all its children
(worker processes), sampled every 0.1 s. `--old REV` runs the same pools with the engine of an earlier commit
(checked out in a temporary git worktree) beside this one, for the before/after table in bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from make_pool import make_pool  # noqa: E402


TICK = os.sysconf("SC_CLK_TCK")


def tree_rss(pid: int, cpu: dict | None = None) -> int:
    """Resident bytes of `pid` and its descendants (Linux /proc); `cpu` collects each one's CPU seconds
    (worker processes are not waited for by us, so os.times() would miss them)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
            if cpu is not None:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                cpu[p] = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        except (OSError, ValueError, IndexError):
            pass
    return total


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def timed_run(cmd: list[str], cwd: Path, env: dict) -> dict:
    peak = 0
    cpu: dict[int, float] = {}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(proc.pid, cpu))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}):\n{err[-3000:]}")
    return {"wall": wall, "cpu": sum(cpu.values()), "peak_rss": peak, "stderr": err}


def run_size(n: int, args, code: Path, label: str) -> list[dict]:
    pool = ROOT / "bench" / ".cache" / f"pool-{n}"
    if not (pool / "recipe.yaml").exists():
        print(f"making a {n:,}-row pool in {pool} ...", flush=True)
        make_pool(n, pool, args.data)
    work = Path(tempfile.mkdtemp(prefix=f"curate-scale-{label}-", dir=args.tmp))
    env = {**os.environ, "PYTHONPATH": str(code)}
    base = [sys.executable, "-m", "curate.cli", "run", str(pool / "recipe.yaml"),
            "--set", f"outputs.dir={work / 'run'}", "--set", f"cache.dir={work / 'cache'}"]
    if args.workers and label == "new":
        base += ["--workers", args.workers]
    rows = []
    try:
        for kind in args.runs.split(","):
            cmd = base + (["--no-cache"] if kind == "nocache" else [])
            r = timed_run(cmd, ROOT, env)
            r.update(size=n, engine=label, run=kind, cache=du(work / "cache"), run_folder=du(work / "run"),
                     input=du(pool) - (pool / "recipe.yaml").stat().st_size)
            rows.append(r)
            print(f"{label:>4} {n:>9,} {kind:>7}: wall {r['wall']:7.1f} s  cpu {r['cpu']:7.1f} s  "
                  f"peak RSS {r['peak_rss'] / 2**30:5.2f} GiB  cache {r['cache'] / 2**30:5.2f} GiB "
                  f"({r['cache'] / r['input']:.2f}x input)  run folder {r['run_folder'] / 2**20:6.0f} MiB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def old_checkout(rev: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="curate-old-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True,
                   capture_output=True)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[73_000, 300_000, 1_000_000])
    ap.add_argument("--workers", default=None, help="curate run --workers (default: the recipe's, auto)")
    ap.add_argument("--old", default=None, help="also run an earlier commit's engine (e.g. 1f6ec5c)")
    ap.add_argument("--runs", default="cold,warm", help="comma list of cold, warm, nocache")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--tmp", default=None, help="folder for the run and cache folders (default: the system temp)")
    args = ap.parse_args()
    old = old_checkout(args.old) if args.old else None
    try:
        for n in args.sizes:
            if old is not None:
                run_size(n, args, old, "old")
            run_size(n, args, ROOT, "new")
    finally:
        if old is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)


if __name__ == "__main__":
    main()
