"""Training rows: read a run folder, tokenize `text` with offsets, mask everything but the assistant spans.

The mask is the one part of training TRL cannot do for curate: the recipe's template rendered `text` and
recorded where the assistant turns are (`assistant_spans`, characters); here they become token labels, which
curate.train.trainer hands to TRL's SFTTrainer as `assistant_masks`. Batching (padded, or padding-free) is
TRL's collator; `PaddingCollator` below serves the evaluations (curate.evals), which score padded batches.

A row of a run folder has `text` (the conversation rendered by the recipe's template) and
`assistant_spans` ([start, end) character spans of each assistant turn, end-of-turn marker included).
A token is trained on (its label is its id) when its characters overlap an assistant span; every other
token gets the label -100 and only conditions the prediction. With ChatML and byte-level BPE the spans
start and end on token boundaries, so the trained tokens decode to exactly the spans' text; a token
that straddles a boundary is trained on (the model learns to emit it).

Special tokens: `text` is the complete string (the template wrote any BOS it wanted), so it is tokenized
with `add_special_tokens=False`; only a tokenizer that adds a BOS by itself and a text that lacks it get
the BOS id put in front.

Truncation: a row longer than `max_length` tokens is cut at the end (the prompt and the start of the
answer stay). A row left with no trained token (a prompt longer than `max_length`) is dropped; both are
counted in the stats.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from curate.errors import CurateError

IGNORE = -100


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


# -- tokenizing ----------------------------------------------------------------------------------------


@dataclass
class EncodeStats:
    rows: int = 0
    kept: int = 0
    truncated: int = 0
    dropped_no_answer: int = 0
    tokens: int = 0
    label_tokens: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts a BOS in front by itself (Llama 2/3 style) when asked for special tokens."""
    cached = getattr(tokenizer, "_curate_adds_bos", None)
    if cached is not None:
        return cached
    bos = tokenizer.bos_token_id
    ids = tokenizer("a", add_special_tokens=True)["input_ids"] if bos is not None else []
    result = bool(ids) and ids[0] == bos
    try:
        tokenizer._curate_adds_bos = result
    except AttributeError:
        pass
    return result


def encode(tokenizer, texts: list[str], spans: list[list], max_length: int, stats: EncodeStats | None = None,
           keep_empty: bool = False) -> list[dict | None]:
    """One `{input_ids, labels}` per text (None for a dropped row unless `keep_empty`); labels are -100
    outside the assistant spans."""
    import numpy as np

    if not getattr(tokenizer, "is_fast", False):
        raise CurateError("training needs a fast tokenizer (offsets mapping); this one is a slow Python tokenizer", "train.model")
    stats = stats if stats is not None else EncodeStats()
    if not texts:
        return []
    bos_text, bos_id = tokenizer.bos_token, tokenizer.bos_token_id
    prepend = adds_bos(tokenizer)
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
    out: list[dict | None] = []
    for text, row_spans, ids, offsets in zip(texts, spans, enc["input_ids"], enc["offset_mapping"]):
        stats.rows += 1
        ids = list(ids)
        starts = np.array([o[0] for o in offsets], dtype=np.int64)
        ends = np.array([o[1] for o in offsets], dtype=np.int64)
        mask = np.zeros(len(ids), dtype=bool)
        for a, b in row_spans or []:
            mask |= (starts < b) & (ends > a) & (ends > starts)
        labels = np.where(mask, np.array(ids, dtype=np.int64), IGNORE).tolist()
        if prepend and not (bos_text and text.startswith(bos_text)):
            ids, labels = [bos_id] + ids, [IGNORE] + labels
        if len(ids) > max_length:
            ids, labels = ids[:max_length], labels[:max_length]
            stats.truncated += 1
        n_labels = sum(1 for x in labels if x != IGNORE)
        if n_labels == 0 and not keep_empty:
            stats.dropped_no_answer += 1
            out.append(None)
            continue
        stats.kept += 1
        stats.tokens += len(ids)
        stats.label_tokens += n_labels
        out.append({"input_ids": ids, "labels": labels})
    return out


def encode_rows(tokenizer, rows: list[dict], max_length: int, stats: EncodeStats | None = None) -> list[dict]:
    """Encoded rows (dropped ones left out), each with `idx`: its position in `rows`."""
    encoded = encode(tokenizer, [r["text"] for r in rows], [r["assistant_spans"] for r in rows], max_length, stats)
    return [dict(e, idx=i) for i, e in enumerate(encoded) if e is not None]


# -- batching ------------------------------------------------------------------------------------------


@dataclass
class PaddingCollator:
    """Right-padded batches with an attention mask; pad labels are -100 (the evaluations' batches)."""

    pad_id: int

    def __call__(self, features: list[dict]) -> dict:
        import torch

        n = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), n), self.pad_id, dtype=torch.long)
        labels = torch.full((len(features), n), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(features), n), dtype=torch.long)
        for i, f in enumerate(features):
            k = len(f["input_ids"])
            ids[i, :k] = torch.tensor(f["input_ids"])
            labels[i, :k] = torch.tensor(f["labels"])
            mask[i, :k] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def batch_tokens(inputs: dict) -> int:
    """Real (non-pad) tokens in a collated batch (a padding-free batch has no pad token)."""
    if "attention_mask" in inputs:
        return int(inputs["attention_mask"].sum())
    return int(inputs["input_ids"].numel())


def encode_prompt(tokenizer, text: str) -> list[int]:
    """Token ids of a prompt string, under the same special-token rule as training rows."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos_text = tokenizer.bos_token
    if adds_bos(tokenizer) and not (bos_text and text.startswith(bos_text)):
        ids = [tokenizer.bos_token_id] + ids
    return ids
