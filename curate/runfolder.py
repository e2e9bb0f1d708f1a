"""The run folder: what `curate run` writes at `outputs.dir`, and the one module that checks, replaces and
reads it.

A folder is curate's only if curate marked it: `.curate-run`, a small JSON file naming the format version
and the recipe, written last into the new folder before it is swapped in. Any other non-empty folder is
refused and left untouched, and so are paths that could never be a run folder of their own: a file, a
symbolic link, the current folder or one above it, a folder that holds the recipe, its inputs or the cache.

A run folder is replaced whole (see `curate.atomic.staged_folder`): at every instant `outputs.dir` holds the
old complete run or the new one. What later commands wrote into the old folder (train/, compare/,
report.html, ...) is hard-linked into the new one before the swap when the new data files are byte-identical
to the old ones, and goes with the old folder when they are not (results of training on other data would be
stale).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from curate.atomic import link_tree, path_lock, recover, staged_folder
from curate.errors import CurateError
from curate.faults import fault_point

FORMAT_VERSION = 1
MARKER = ".curate-run"
MANIFEST = "manifest.json"
# what `curate run` itself writes: never carried over from an earlier run (a dropped format must go)
RUN_OWNED = re.compile(r"^(manifest\.json|rejects\.jsonl|changes\.jsonl|(data|baseline_random)(\.jsonl|\.parquet)?)$")


def is_run_folder(folder: Path) -> bool:
    try:
        marker = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("made_by") == "curate"


def check_output_dir(out_dir: Path, recipe=None, what: str = "outputs.dir") -> Path:
    """Refuse an output folder curate must not replace; returns it. `recipe` adds its own checks: the
    folder must not hold the recipe file, an input file or the step cache."""
    out = Path(out_dir)
    if out.is_symlink():
        raise CurateError(f"{out} is a symbolic link; give the folder it points to, or another folder", what)
    if out.exists() and not out.is_dir():
        raise CurateError(f"{out} is a file, not a folder; choose another {what}", what)
    real = Path(os.path.realpath(out))
    here = Path.cwd().resolve()
    if real == here or real in here.parents:
        raise CurateError(f"{str(out)!r} is the current folder or one above it; a run folder is replaced whole, so "
                          f"give it a folder of its own (e.g. runs/NAME)", what)
    if recipe is not None:
        guarded = [("the recipe", recipe.base_dir), ("the step cache", recipe.cache.dir)]
        guarded += [(f"the input {p}", p) for p in _local_inputs(recipe)]
        for name, path in guarded:
            p = Path(os.path.realpath(path))
            if p == real or real in p.parents:
                raise CurateError(f"{out} holds {name}; a run folder is replaced whole: choose another {what}", what)
    if out.is_dir() and any(out.iterdir()) and not is_run_folder(out):
        older = " (a run folder of an older curate? delete it and run again)" if (out / MANIFEST).exists() else ""
        raise CurateError(f"{out} exists and is not a curate run folder (no {MARKER} marker){older}; curate only "
                          f"replaces folders it made: choose another {what}", what)
    return out


def _local_inputs(recipe) -> list[str]:
    paths = []
    for src in recipe.sources.values():
        for p in (src.path if isinstance(src.path, list) else [src.path] if src.path else []):
            if not p.startswith(("http://", "https://")):
                paths.append(p)
    return paths


def Carried(kept: list[str] | None = None, removed: list[str] | None = None) -> dict:
    """What later commands had written into the previous run folder: kept (same data) or removed."""
    return {"kept": kept or [], "removed": removed or []}


@contextmanager
def replace_run_folder(out_dir: Path, recipe) -> Iterator[tuple[Path, dict]]:
    """Yield (a new empty folder, what gets carried); when the block ends the folder gets the marker and
    replaces `out_dir` whole. On an error `out_dir` is left as it was."""
    carried = Carried()

    def carry(old: Path, new: Path) -> None:
        if is_run_folder(old):
            carried.update(carry_results(old, new))

    with staged_folder(out_dir, before_swap=carry, what="this run folder") as tmp:
        yield tmp, carried
        write_marker(tmp, recipe)


def write_marker(folder: Path, recipe) -> None:
    marker = {"made_by": "curate", "format_version": FORMAT_VERSION, "recipe": recipe.name,
              "recipe_hash": recipe.fingerprint()}
    (Path(folder) / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


@contextmanager
def run_folder_lock(out_dir: Path) -> Iterator[list[str]]:
    """One `curate run` per output folder at a time: a second one stops at once with a clear message. Holding
    the lock, finish what a killed run left (see curate.atomic.recover); yields what was done."""
    with path_lock(out_dir, what="this run folder"):
        yield recover(out_dir)


def carry_results(old: Path, new: Path) -> dict:
    """Link what later commands wrote into the old run folder over to the new one when the data is unchanged.
    Hidden names (the marker, other commands' staging folders) are never carried."""
    extra = sorted(p.name for p in old.iterdir() if not RUN_OWNED.match(p.name) and not p.name.startswith("."))
    if not extra:
        return Carried()
    names = data_names(new)
    if data_digest(old, names) != data_digest(new, names):
        return Carried(removed=extra)
    for name in extra:
        link_tree(old / name, new / name)
        fault_point("carry")
    return Carried(kept=extra)


def data_names(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir()
                  if RUN_OWNED.match(p.name) and p.name.startswith(("data", "baseline")))


def data_digest(run_dir: Path, names: list[str] | None = None) -> str | None:
    """sha256 of a run folder's data files (`data.*`, `baseline_random.*`, or those `names`), None when one is
    missing. An Arrow folder's state.json is left out: it holds the recipe's fingerprint, which changes with
    keys that change no row (train:, description, ...)."""
    run_dir = Path(run_dir)
    digest = hashlib.sha256()
    for name in names if names is not None else data_names(run_dir):
        path = run_dir / name
        if not path.exists():
            return None
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != "state.json") if path.is_dir() else [path]
        for f in files:
            digest.update(f.relative_to(run_dir).as_posix().encode() + b"\0")
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def load_manifest(run_dir: Path) -> dict:
    """The manifest of a run folder, with a clear error when there is none or a newer curate wrote it."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise CurateError("not a curate run folder: manifest.json is missing", str(run_dir))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CurateError(f"manifest.json is not valid JSON ({e})", str(path)) from None
    if not isinstance(manifest, dict):
        raise CurateError("manifest.json is not a JSON object", str(path))
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise CurateError(f"written by a newer curate (format {manifest['format_version']} > {FORMAT_VERSION}); "
                          "upgrade curate", str(path))
    return manifest


def alarms(manifest: dict) -> list[str]:
    """What a step flagged as too much: a deduplicator that dropped most of a source's rows."""
    out = []
    for s in manifest.get("steps", []):
        for source, a in sorted(((s.get("notes") or {}).get("alarm") or {}).items()):
            out.append(f"{s['label']} dropped {a['share']:.0%} of the rows of source {source!r} ({a['dropped']:,} of "
                       f"{a['rows']:,}): templated rows or a loose threshold? `curate inspect RUN --step {s['label']}` "
                       "shows them")
    return out


def funnel_rows(manifest: dict) -> list[tuple[str, int, int, int, str]]:
    """(step, rows in, rows out, dropped, top reasons) for the funnel table and the data card."""
    read = manifest["load"]["rows_read"]
    out = [("load", read, read - manifest["load"]["rows_skipped"],
            manifest["load"]["rows_skipped"], "malformed rows skipped" if manifest["load"]["rows_skipped"] else "")]
    for s in manifest["steps"]:
        top = ", ".join(f"{r} ({c})" for r, c in list(s["dropped_by_reason"].items())[:3])
        out.append((s["label"], s["rows_in"], s["rows_out"], s["dropped"], top))
    if manifest.get("mix"):
        m = manifest["mix"]
        parts = ", ".join(f"{n} {v['realised']['rows']}" for n, v in m["components"].items())
        out.append(("mix", m["rows_in"], m["realised"]["rows"], m["dropped"],
                    f"{parts}" + (f"; {m['repeats']} repeated rows" if m["repeats"] else "")))
    return out


def data_files(run_dir: Path, stem: str = "data") -> dict[str, Path]:
    """The files a run wrote for `stem` (data, baseline_random), by format."""
    run_dir = Path(run_dir)
    found = {}
    for fmt, path in (("parquet", run_dir / f"{stem}.parquet"), ("jsonl", run_dir / f"{stem}.jsonl"),
                      ("arrow", run_dir / stem)):
        if path.is_file() or (fmt == "arrow" and path.is_dir() and (path / "state.json").is_file()):
            found[fmt] = path
    return found


def read_rows(run_dir: Path, stem: str = "data") -> list[dict]:
    """The rows of a run folder's `stem` files, whichever format the run wrote (jsonl, parquet, Arrow)."""
    from curate.io import quiet_datasets, read_jsonl

    files = data_files(run_dir, stem)
    if "jsonl" in files:
        return read_jsonl(files["jsonl"])
    if "parquet" in files:
        import pyarrow.parquet as pq

        return pq.read_table(files["parquet"]).to_pylist()
    if "arrow" in files:
        return quiet_datasets().load_from_disk(str(files["arrow"])).to_list()
    raise CurateError(f"the run wrote no {stem}.jsonl, {stem}.parquet or {stem}/ folder", str(run_dir))


def read_rejects(run_dir: Path) -> list[dict]:
    from curate.io import read_jsonl

    path = Path(run_dir) / "rejects.jsonl"
    if not path.is_file():
        raise CurateError("rejects.jsonl is missing: the run folder is incomplete", str(run_dir))
    return read_jsonl(path)
