"""Finding eval items inside rows, by their words, whatever the items' length.

Texts become normalised words (NFKC, lower case, runs of letters and digits). An eval item of L words is
looked for in these ways:
- `ngram` (L >= n): any n consecutive words of it (GPT-3's 13-gram test). From L >= 2n on, a single changed word
  still leaves a run of n.
- `near` (floor <= L < 2n): the whole item, with at most one word different, found through either half of it
  (a one-word edit leaves one half intact; the half proposes where the item would start, and the L words there
  are compared).
- `whole` (min_words <= L < floor): the whole item, exactly, and only where it makes up at least half of the
  row's text (a short question inside a long answer is usually a common phrase, not a copy).
- `uncheckable` (L < min_words): too short to tell a copy from a coincidence; counted, never matched.
Window hashes are computed for all texts of a batch at once (numpy); every hit is confirmed on the words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+")
_P = np.uint64(0x100000001B3)
COMMON = 64  # a half shared by more eval items than this proposes nothing (the other half still does)
CHECKS = ("ngram", "ngram+near", "near", "whole", "uncheckable")  # how an item is looked for, by its length


def words(text: str) -> list[str]:
    """The normalised words n-grams are made of: NFKC, lower case, runs of letters/digits/underscore
    (punctuation and whitespace only separate words)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


@dataclass
class Hit:
    item: object  # what the item was added with (eval set, row)
    words: list[str]  # the row's words that matched
    check: str  # ngram, near or whole
    differs: int  # words that differ (near: 0 or 1)
    position: int  # where in the row's words


class OverlapIndex:
    def __init__(self, n: int, floor: int, min_words: int):
        self.n, self.floor, self.min_words = n, floor, min_words
        self.vocab: dict[str, int] = {}
        self.items: list[tuple[object, np.ndarray]] = []  # (owner, word ids)
        # window size -> hash -> [(item, offset in the item, the check that window is for)]
        self.tables: dict[int, dict[int, list[tuple[int, int, str]]]] = {}
        self._keys: dict[int, np.ndarray] | None = None  # window size -> its hashes, sorted (built on first use)

    def _ids(self, ws: list[str], grow: bool) -> np.ndarray:
        if grow:
            return np.fromiter((self.vocab.setdefault(w, len(self.vocab) + 1) for w in ws), dtype=np.uint64, count=len(ws))
        get = self.vocab.get
        return np.fromiter((get(w, 0) for w in ws), dtype=np.uint64, count=len(ws))

    @property
    def size(self) -> int:
        return sum(len(t) for t in self.tables.values())

    def check_for(self, length: int) -> str:
        if length >= 2 * self.n:
            return "ngram"
        if length >= self.n:
            return "ngram+near"
        if length >= self.floor:
            return "near"
        return "whole" if length >= self.min_words else "uncheckable"

    def add(self, ws: list[str], owner) -> str:
        """Index an eval item; returns how it will be looked for (one of CHECKS)."""
        check = self.check_for(len(ws))
        if check == "uncheckable":
            return check
        item = len(self.items)
        ids = self._ids(ws, grow=True)
        self.items.append((owner, ids))
        pieces = []
        if "near" in check:
            half = (len(ws) + 1) // 2
            pieces += [(0, half, "near"), (half, len(ws) - half, "near")]
        if check == "whole":
            pieces.append((0, len(ws), "whole"))
        if "ngram" in check:  # every window of the item in one vectorised call
            grams = _window_hashes([ids], self.n)[0].tolist()
            table = self.tables.setdefault(self.n, {})
            for offset, h in enumerate(grams):
                table.setdefault(h, []).append((item, offset, "ngram"))
        for offset, size, how in pieces:
            if how != "ngram":
                h = int(_window_hashes([ids[offset:offset + size]], size)[0][0])
                self.tables.setdefault(size, {}).setdefault(h, []).append((item, offset, how))
        self._keys = None
        return check

    def prune(self) -> None:
        """Forget halves that too many items share: they would propose every row (the other half of each
        such item still does the work)."""
        for table in self.tables.values():
            for h in [h for h, entries in table.items() if len(entries) > COMMON]:
                kept = [e for e in table[h] if e[2] != "near"]
                if kept:
                    table[h] = kept
                else:
                    del table[h]
        self._keys = None

    def find(self, texts: list[list[str]]) -> list[Hit | None]:
        """For each text (a list of words), its first overlap with an eval item, or None."""
        hits: list[Hit | None] = [None] * len(texts)
        if not self.tables:
            return hits
        if self._keys is None:
            self._keys = {size: np.sort(np.fromiter(t.keys(), dtype=np.uint64, count=len(t))) for size, t in self.tables.items()}
        ids = [self._ids(ws, grow=False) for ws in texts]
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in ids])])
        for size in sorted(self.tables, reverse=True):  # the longest windows first
            table, keys = self.tables[size], self._keys[size]
            hashes, text_of_window = _window_hashes(ids, size)
            if not len(hashes) or not len(keys):
                continue
            at = np.minimum(np.searchsorted(keys, hashes), len(keys) - 1)
            for w in np.flatnonzero(keys[at] == hashes).tolist():
                i = int(text_of_window[w])
                if i < 0 or hits[i] is not None:  # a window across two texts, or a text already matched
                    continue
                pos = w - int(offsets[i])
                for item, offset, how in table[int(hashes[w])]:
                    hit = self._confirm(ids[i], texts[i], pos, item, offset, size, how)
                    if hit is not None:
                        hits[i] = hit
                        break
        return hits

    def _confirm(self, row: np.ndarray, row_words: list[str], pos: int, item: int, offset: int, size: int,
                 check: str) -> Hit | None:
        owner, ids = self.items[item]
        if check == "ngram":
            if np.array_equal(row[pos:pos + size], ids[offset:offset + size]):
                return Hit(owner, row_words[pos:pos + size], check, 0, pos)
            return None
        start = pos - offset
        if start < 0 or start + len(ids) > len(row):
            return None
        differs = int((row[start:start + len(ids)] != ids).sum())
        if check == "whole":
            if differs or 2 * len(ids) < len(row):
                return None
        elif differs > 1:
            return None
        return Hit(owner, row_words[start:start + len(ids)], check, differs, start)


def _window_hashes(ids_list: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, text index) of every window of n consecutive ids, over all texts at once (n vector
    operations on the concatenation). Windows that run from one text into the next get the text
    index -1 (to be ignored); a window's position is its start in the concatenation."""
    lengths = np.fromiter((len(a) for a in ids_list), dtype=np.int64, count=len(ids_list))
    flat = np.concatenate(ids_list) if len(ids_list) else np.zeros(0, np.uint64)
    m = len(flat) - n + 1
    if m <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    with np.errstate(over="ignore"):
        h = np.zeros(m, dtype=np.uint64)
        for k in range(n):
            h = h * _P + flat[k:k + m] + np.uint64(1)
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(32)
    owner = np.repeat(np.arange(len(lengths)), lengths)[:m]
    ends = np.concatenate([[0], np.cumsum(lengths)])[1:]  # a window [g, g+n) fits if g + n <= end of its text
    inside = np.arange(m) + n <= ends[owner]
    owner = np.where(inside, owner, -1)
    return h, owner
