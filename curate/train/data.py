"""Training rows: read a run folder (or one file of rows), check them, split off a validation sample.

Turning a row into token ids and labels is curate.encoding (shared with the evaluations).

A row of a run folder has `text` (the conversation rendered by the recipe's template) and
`assistant_spans` ([start, end) character spans of each assistant turn, end-of-turn marker included).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from curate.errors import CurateError


# -- reading rows --------------------------------------------------------------------------------------


def read_rows(path: str | Path, stem: str = "data") -> list[dict]:
    """Rows of a run folder (`<stem>.jsonl`, else `<stem>.parquet`, else the Arrow folder `<stem>/`) or of
    one jsonl / json / parquet file. Each must have `text` and `assistant_spans`."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / f"{stem}.jsonl", path / f"{stem}.parquet", path / stem):
            if candidate.exists():
                return read_rows(candidate) if candidate.is_file() else check_rows(_read_arrow(candidate), candidate)
        raise CurateError(f"no {stem}.jsonl, {stem}.parquet or {stem}/ in {path}: is it a curate run folder?", str(path))
    if not path.is_file():
        raise CurateError("no such file or folder", str(path))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    elif path.suffix in (".jsonl", ".ndjson"):
        rows = []
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as e:
                        raise CurateError(f"not valid JSON: {e}", f"{path}:{i}") from None
    elif path.suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise CurateError("a .json file of rows is a JSON list", str(path))
    else:
        raise CurateError("training data is a run folder or a .jsonl, .json or .parquet file", str(path))
    return check_rows(rows, path)


def _read_arrow(folder: Path) -> list[dict]:
    from datasets import load_from_disk

    return load_from_disk(str(folder)).to_list()


def check_rows(rows: list[dict], where) -> list[dict]:
    """`rows`, after checking that each has `text` and `assistant_spans`."""
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "text" not in row or "assistant_spans" not in row:
            raise CurateError(
                f"row {i} has no `text` and `assistant_spans`: training needs rows rendered by a template "
                "(the recipe's `template:` section must not be null)", str(where))
    return rows


def split_rows(rows: list[dict], fraction: float, max_rows: int | None, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, validation): a seeded sample of `fraction` of the rows (at least 1, at most `max_rows`)."""
    if fraction <= 0 or len(rows) < 2:
        return list(rows), []
    k = max(1, math.ceil(len(rows) * fraction))
    if max_rows is not None:
        k = min(k, max_rows)
    k = min(k, len(rows) - 1)
    picked = set(random.Random(seed).sample(range(len(rows)), k))
    return [r for i, r in enumerate(rows) if i not in picked], [r for i, r in enumerate(rows) if i in picked]
