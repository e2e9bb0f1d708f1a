"""The ledger: every row that does not reach the output is here, with the step and the reason.

At the end of a run `rows_in == rows_out + dropped` must hold; a violation is an error, because it
means a step lost rows without saying why.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from curate.errors import CurateError

# a number standing alone (not the digits inside a name such as gsm8k_test or llama3)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.]*\w)")


def reason_group(reason: str) -> str:
    """Reasons carry values ("response_words=1 < min 3"); the funnel counts them by rule."""
    return _NUMBER.sub("#", reason)


@dataclass(frozen=True)
class Drop:
    """Why a filter or deduplicator dropped one row."""

    reason: str  # short, names the rule: "response_words < 3", "exact duplicate (prompt)"
    duplicate_of: str | None = None  # id of the kept row this one duplicated
    detail: dict | None = None  # anything else worth keeping (similarity, matched pattern, ...)


class Ledger:
    def __init__(self):
        self.rejects: list[dict] = []

    def drop(self, step: str, row: dict, drop: Drop) -> None:
        entry = {"step": step, "reason": drop.reason}
        if drop.duplicate_of is not None:
            entry["duplicate_of"] = drop.duplicate_of
        if drop.detail:
            entry["detail"] = drop.detail
        entry["row"] = row
        self.rejects.append(entry)

    def skip(self, source: str, where: str, reason: str, raw: str) -> None:
        """A line or record that never became a row (malformed input under on_error: skip)."""
        self.rejects.append({"step": "load", "reason": reason, "where": where, "row": {"source": source, "raw": raw}})

    def extend(self, entries: list[dict]) -> None:
        self.rejects.extend(entries)

    def __len__(self) -> int:
        return len(self.rejects)

    def counts_by_reason(self, step: str) -> dict[str, int]:
        c = Counter(reason_group(e["reason"]) for e in self.rejects if e["step"] == step)
        return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))

    @staticmethod
    def check_identity(rows_in: int, rows_out: int, dropped: int) -> None:
        if rows_in != rows_out + dropped:
            raise CurateError(
                f"ledger identity violated: {rows_in} rows in != {rows_out} out + {dropped} dropped "
                "(a step lost rows without a reason: this is a bug, please report it)"
            )

