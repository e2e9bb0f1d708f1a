"""The no-embedding lima_style pipeline at scale: wall, CPU, peak memory, cache and run-folder size.

    python bench/bench_scale.py [SIZES ...] [--workers auto] [--old REV] [--runs cold,warm]
                                [--executor local|ray] [--nodes 2] [--steps]

For each size N (default 73000 300000 1000000) a pool is made once with bench/make_pool.py (in
bench/.cache/pool-N) and `curate run` is timed in a fresh process: `cold` starts from an empty step cache
(and fills it, as a first run does), `warm` runs again with the cache from `cold`, `nocache` passes
--no-cache. Peak RSS is the largest sum of the resident memory of the run's process and all its children
(worker processes), sampled every 0.1 s. `--old REV` runs the same pools with the engine of an earlier commit
(checked out in a temporary git worktree) beside this one, for the before/after table in bench/README.md.

`--executor ray` runs the same pools with `curate run --executor ray` (a Ray instance started by the run, with
`--workers` CPUs); `--nodes 2` instead starts a simulated two-node cluster here (ray.cluster_utils.Cluster, one
CPU per node) and passes its `--address`. The driver's own peak RSS (the `curate run` process alone: the row
store's masks, the global steps' keys and decisions) is printed beside the tree's. With a cluster the tree is
this script's (the cluster's processes are its children). `--steps` prints each step's seconds per row from the
run's manifest: wall (summed over parts for row-local steps), and CPU (`parts cpu`: summed over the part tasks,
a row-local step's work or a global step's keys; `global cpu`: a global step's decision on the driver). On a
loaded machine the CPU figures hold where the wall ones grow.
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


def own_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def timed_run(cmd: list[str], cwd: Path, env: dict, tree_of: int | None = None) -> dict:
    """Wall, CPU and peak RSS of `cmd` and its children (or of the process tree `tree_of` when given), and
    the peak RSS of the command's own process."""
    peak = driver = 0
    cpu: dict[int, float] = {}
    cpu_before = 0.0
    if tree_of is not None:  # a cluster that was running before: count only the CPU time it spends from now
        tree_rss(tree_of, cpu)
        cpu_before = sum(cpu.values())
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample():
        nonlocal peak, driver
        while not done.is_set():
            peak = max(peak, tree_rss(tree_of or proc.pid, cpu))
            driver = max(driver, own_rss(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}):\n{err[-3000:]}")
    return {"wall": wall, "cpu": sum(cpu.values()) - cpu_before, "peak_rss": peak, "driver_rss": driver,
            "stderr": err}


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
    if label == "new" and args.executor == "ray":
        base += ["--executor", "ray"] + (["--address", args.cluster.address] if args.cluster else [])
    label = f"{label}/{args.executor}" + (f"x{args.nodes}" if args.cluster else "")
    rows = []
    try:
        for kind in args.runs.split(","):
            cmd = base + (["--no-cache"] if kind == "nocache" else [])
            r = timed_run(cmd, ROOT, env, tree_of=os.getpid() if args.cluster else None)
            r.update(size=n, engine=label, run=kind, cache=du(work / "cache"), run_folder=du(work / "run"),
                     input=du(pool) - (pool / "recipe.yaml").stat().st_size)
            rows.append(r)
            print(f"{label:>9} {n:>9,} {kind:>7}: wall {r['wall']:7.1f} s  cpu {r['cpu']:7.1f} s  "
                  f"peak RSS {r['peak_rss'] / 2**30:5.2f} GiB (driver {r['driver_rss'] / 2**30:5.2f})  "
                  f"cache {r['cache'] / 2**30:5.2f} GiB ({r['cache'] / r['input']:.2f}x input)  "
                  f"run folder {r['run_folder'] / 2**20:6.0f} MiB", flush=True)
            if args.steps:
                print_steps(work / "run" / "manifest.json")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def print_steps(manifest_path: Path) -> None:
    import json

    manifest = json.loads(manifest_path.read_text())
    timings = manifest["timings"]["steps"]
    for step in manifest["steps"]:
        t = timings[step["label"]]
        rows = max(step["rows_in"], 1)
        cpu = "".join(f"  {name} {t[key]:8.2f} s {t[key] / rows * 1e6:7.1f} us/row"
                      for name, key in (("parts cpu", "parts_cpu_s"), ("global cpu", "global_cpu_s")) if key in t)
        print(f"    {step['label']:<20} {step['rows_in']:>9,} rows  wall {t['seconds']:8.2f} s "
              f"{t['seconds'] / rows * 1e6:7.1f} us/row{cpu}" + ("  (cached)" if t["cached"] else ""), flush=True)
    print(f"    load {manifest['timings']['load_s']} s, template and write {manifest['timings']['template_and_write_s']} s, "
          f"total {manifest['timings']['total_s']} s", flush=True)


def start_cluster(nodes: int):
    """A simulated cluster on this machine: `nodes` raylets with one CPU each, sharing the filesystem."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    return cluster


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
    ap.add_argument("--executor", choices=["local", "ray"], default="local", help="curate run --executor")
    ap.add_argument("--nodes", type=int, default=0, help="with --executor ray: a simulated cluster of N nodes")
    ap.add_argument("--steps", action="store_true", help="print each step's seconds per row")
    args = ap.parse_args()
    args.cluster = start_cluster(args.nodes) if args.executor == "ray" and args.nodes else None
    old = old_checkout(args.old) if args.old else None
    try:
        for n in args.sizes:
            if old is not None:
                run_size(n, args, old, "old")
            run_size(n, args, ROOT, "new")
    finally:
        if old is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)
        if args.cluster is not None:
            args.cluster.shutdown()


if __name__ == "__main__":
    main()
