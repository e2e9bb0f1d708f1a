"""`dedup.exact`: drop rows whose key text is identical to an earlier (or better) row's."""

from __future__ import annotations

import hashlib
from functools import partial
from typing import Literal

import numpy as np
import pyarrow as pa

from curate.ledger import Drop
from curate.rows import normalise, text_of
from curate.steps.base import as_table, values
from curate.steps.dedup.keep import KeepFilter, KeepPolicy, conversation_lengths, keep_groups
from curate.steps.grouping import Grouping
from curate.steps.registry import register

TextKey = Literal["prompt", "response", "conversation", "first_user"]


class ExactParams(KeepPolicy):
    key: TextKey = "conversation"
    normalise: bool = True


@register
class ExactDedup(KeepFilter):
    """Exact deduplication on one text of each row, across all sources.

    Params:
    - `key` (default "conversation"): which text to compare: "prompt" (everything before the last
      assistant turn), "response" (the last assistant turn), "conversation" (every turn with its
      role) or "first_user" (the first user message).
    - `normalise` (default true): compare texts after `curate.rows.normalise` (NFC, lower case,
      whitespace collapsed), so "Hello  World" and "hello world" are duplicates; false compares the
      exact strings.
    - `keep` (default "first") / `score_column`: which row of a group stays: the first, the longest
      (most characters across all messages) or the one with the highest `score_column`
      (NaN last; ties go to the earliest row).

    Rows whose key text is empty (or only whitespace) are left alone: they are not duplicates of one
    another; dropping empty rows is a filter's job, and the ledger should say "empty", not "duplicate".

    Each dropped row gets `Drop(reason="exact duplicate (<key>)", duplicate_of=<kept row id>,
    detail={"kept_index": <kept row's position in this step's input>, "group_size": n})`. Rows
    with identical conversations share an id, so duplicate_of can equal the dropped row's own id.
    """

    name = "dedup.exact"
    Params = ExactParams

    def keys(self, batch: pa.Table) -> dict[str, np.ndarray]:
        """Per row a 128-bit digest of the key text (b"" for an empty one) and the conversation's length:
        what deciding needs, without holding any text."""
        p: ExactParams = self.params
        messages = values(batch, "messages")
        digests = []
        for msgs in messages:
            text = text_of(msgs, p.key)
            text = normalise(text) if p.normalise else text
            digests.append(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
                           if text.strip() else b"")
        return {"digest": np.asarray(digests, dtype="S16"), "length": conversation_lengths(messages)}

    def grouping(self, table: pa.Table, keys: dict | None = None) -> Grouping:
        """Rows with a text, grouped by digest (its first 8 bytes are the group's hash), one kept per group by
        the keep policy (`keep_groups`): how `decide` runs here and how a cluster runs it as a hash shuffle."""
        table = as_table(table)  # a datasets.Dataset works too
        p: ExactParams = self.params
        keys = self.own_keys(table, keys)
        digest = np.asarray(keys["digest"], dtype="S16")
        pos = np.flatnonzero(digest != b"")  # an empty text is nobody's duplicate
        words = np.frombuffer(digest[pos].tobytes(), dtype="<u8").reshape(-1, 2)
        rows = pa.table({"_pos": pos, "_hash": words[:, 0], "d1": words[:, 1],  # the digest's two halves
                         **self.policy_columns(table, keys, pos)})
        return Grouping(rows, (partial(keep_groups, keep=p.keep, by=("_hash", "d1")),), partial(self._drops, table))

    def decide(self, table: pa.Table, keys: dict | None = None) -> list[Drop | None]:
        return self.grouping(table, keys).decide()

    def _drops(self, table: pa.Table, dropped: pa.Table) -> list[Drop | None]:
        """keep_groups' results (in any order) as one decision per row, with the notes and the alarm."""
        p: ExactParams = self.params
        dropped = dropped.sort_by("_pos")
        ids = self.ids_of(table, dropped.column("kept").to_numpy())
        out: list[Drop | None] = [None] * table.num_rows
        reason = f"exact duplicate ({p.key})"
        for i, kept, size in zip(*(dropped.column(c).to_pylist() for c in ("_pos", "kept", "size"))):
            out[i] = Drop(reason, ids[kept], {"kept_index": kept, "group_size": size})
        kept, first = np.unique(dropped.column("kept").to_numpy(), return_index=True)
        self.ctx.notes["duplicate_groups"] = len(kept)
        self.note_sizes(dropped.column("size").to_numpy()[first])
        self.check_alarm(table, out)
        return out
