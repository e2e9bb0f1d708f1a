"""Shared by the fault-injection suite: a small recipe with every output kind, a subprocess runner that can
kill curate at a named phase (curate.faults), and checks on run folders."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.test_pipeline import RECIPE as PIPELINE_RECIPE
from tests.test_pipeline import make_data

# test_pipeline's recipe (every output kind: jsonl, parquet, arrow, a random baseline, rejects; steps of every
# role), writing to runs/out so that the folder beside it can be watched for leftovers
RECIPE = PIPELINE_RECIPE.replace("name: t\n", "name: faults\n").replace("outputs: {dir: out,", "outputs: {dir: runs/out,")
assert "runs/out" in RECIPE


def workspace(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    make_data(root)
    (root / "r.yaml").write_text(textwrap.dedent(RECIPE))
    return root


def curate_run(cwd: Path, *args: str, fault: str | None = None, env: dict | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    """`curate run r.yaml ARGS` in a fresh process; `fault` kills it (SIGKILL) at that phase."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("CURATE_FAULT", None)
    if fault:
        full_env["CURATE_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "curate.cli", "run", "r.yaml", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def killed(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode == -9


def complete_run(folder: Path) -> bool:
    """A whole run folder: the marker, the manifest, and every file the manifest lists."""
    if not (folder / ".curate-run").is_file() or not (folder / "manifest.json").is_file():
        return False
    manifest = json.loads((folder / "manifest.json").read_text())
    return all((folder / name.rstrip("/")).exists() for name in manifest["outputs"]["files"])


def same_run(a: Path, b: Path) -> bool:
    """Byte-identical run folders, but for the manifest's `timings` and `executor` blocks (how it ran)."""
    cmp = filecmp.dircmp(a, b, ignore=[])
    if cmp.left_only or cmp.right_only:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    if errors:
        return False
    for name in mismatch:
        if name != "manifest.json":
            return False
        ma, mb = (json.loads((x / name).read_text()) for x in (a, b))
        for block in ("timings", "executor"):
            ma.pop(block, None), mb.pop(block, None)
        if ma != mb:
            return False
    return all(same_run(a / d, b / d) for d in cmp.common_dirs)


def leftovers(root: Path) -> list[str]:
    """Temporary files or folders of curate anywhere under `root` (staging folders, cache temp entries)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*")
                  if p.name.endswith((".tmp", ".old")))
