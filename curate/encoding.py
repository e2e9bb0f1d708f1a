"""Rendered rows to token ids, with labels on the assistant spans only; padded batches. Shared by training
(curate.train) and the evaluations (curate.evals), so both see a row through the same tokens.

The mask is the one part of training TRL cannot do for curate: the recipe's template rendered `text` and
recorded where the assistant turns are (`assistant_spans`, characters); here they become token labels, which
curate.train.trainer hands to TRL's SFTTrainer as `assistant_masks`. Batching (padded, or padding-free) is
TRL's collator; `PaddingCollator` below serves the evaluations, which score padded batches.

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

from dataclasses import dataclass

from curate.errors import CurateError

IGNORE = -100


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
