"""Seeds derived from the recipe seed, one per purpose: the same on every machine and Python version
(`hash()` of a string is salted per process, so it is never used for this)."""

from __future__ import annotations

import hashlib


def derive_seed(*parts, digits: int = 8) -> int:
    """The integer of the first `digits` hex digits of sha256("part1:part2:..."), e.g.
    `derive_seed(recipe_seed, step_index, label)`."""
    return int(hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:digits], 16)
