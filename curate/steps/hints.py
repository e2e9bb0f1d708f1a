"""Words a regex cannot match without: a cheap test that lets a step skip the regex on most texts.

`needs(pattern, flags)` reads the regex's parse tree (Python's own `re` parser) and collects what every match
must contain: each run of literal characters in the top-level sequence, and for an alternation the first
run of every branch (one of them must be there). A text without any of one requirement's strings cannot
match, so `Needs.allows(text)` can say no without running the regex (`Gate` does it for a list of patterns
at once); it never says no to a text the regex matches (tests/steps/score/test_score_heuristics.py compares
the two on real rows). Runs shorter than 3 characters are
ignored (2 inside an alternation): they would let almost every text through anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

try:  # Python 3.11+
    from re import _parser as sre_parse
    from re._constants import BRANCH, IN, LITERAL, MAX_REPEAT, MIN_REPEAT, SUBPATTERN
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse  # type: ignore
    from sre_constants import BRANCH, IN, LITERAL, MAX_REPEAT, MIN_REPEAT, SUBPATTERN  # type: ignore

MIN_RUN = 3


@dataclass(frozen=True)
class Needs:
    """All of `requirements` must hold for a match; each is a set of strings one of which must occur."""

    requirements: tuple[frozenset[str], ...]
    ignore_case: bool

    def allows(self, text: str, folded: str | None = None) -> bool:
        """False only when the regex cannot match `text`. `folded`: text.casefold(), if already made."""
        if self.ignore_case:
            text = folded if folded is not None else text.casefold()
        return all(any(s in text for s in req) for req in self.requirements)


def needs(pattern: str, flags: int = 0) -> Needs | None:
    """What every match of `pattern` contains, or None when nothing useful is certain."""
    try:
        parsed = sre_parse.parse(pattern, flags)
    except re.error:
        return None
    ignore_case = bool((flags | parsed.state.flags) & re.IGNORECASE)
    reqs = _requirements(list(parsed), ignore_case)
    if not reqs:
        return None
    return Needs(tuple(reqs), ignore_case)


def _requirements(seq: list, fold: bool) -> list[frozenset[str]]:
    """Requirements of a sequence of parse items: each literal run, and what nested required parts need."""
    out: list[frozenset[str]] = []
    run: list[str] = []

    def close():
        if len(run) >= MIN_RUN:
            text = "".join(run)
            out.append(frozenset([text.casefold() if fold else text]))
        run.clear()

    for op, av in seq:
        if op == LITERAL:
            run.append(chr(av))
            continue
        close()
        if op == SUBPATTERN:
            out += _requirements(list(av[-1]), fold)
        elif op in (MAX_REPEAT, MIN_REPEAT) and av[0] >= 1:
            out += _requirements(list(av[2]), fold)
        elif op == BRANCH:
            choices = []
            for branch in av[1]:
                first = _first_run(list(branch), fold)
                if first is None:  # a branch with no literal: the alternation requires nothing certain
                    choices = []
                    break
                choices.append(first)
            if choices:
                out.append(frozenset(choices))
        elif op == IN:
            pass  # a character class: one of several characters, no run
    close()
    return out


def _first_run(seq: list, fold: bool) -> str | None:
    """A literal run every match of `seq` contains (its longest; 2 characters will do inside an alternation,
    where the other branches' words narrow it down too)."""
    best, run = "", []
    for op, av in seq + [(None, None)]:
        if op == LITERAL:
            run.append(chr(av))
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
        if op == SUBPATTERN or (op in (MAX_REPEAT, MIN_REPEAT) and av[0] >= 1):
            inner = _first_run(list(av[-1] if op == SUBPATTERN else av[2]), fold)
            if inner and len(inner) > len(best):
                best = inner
    if len(best) < 2:
        return None
    return best.casefold() if fold else best


class Gate:
    """Which of several regexes could match a text. Each pattern has an anchor: the one of its requirements
    whose strings are longest (rarest); the anchors of all the patterns are looked for with one `in` test
    each, and only a pattern whose anchor is there has its other requirements checked. A pattern with no
    certain needs is always a candidate. `enabled=False` makes every pattern a candidate (to compare)."""

    def __init__(self, patterns: list[str], flags: int = 0, enabled: bool = True):
        self.needs = [needs(p, flags) if enabled else None for p in patterns]
        self._anchored: dict[tuple[bool, str], list[int]] = {}  # (ignore_case, anchor string) -> patterns
        for k, n in enumerate(self.needs):
            if n is not None:
                anchor = max(n.requirements, key=lambda req: min(map(len, req)))
                for string in sorted(anchor):
                    self._anchored.setdefault((n.ignore_case, string), []).append(k)
        self._folded = tuple(sorted({s for case, s in self._anchored if case}))
        self._plain = tuple(sorted({s for case, s in self._anchored if not case}))
        self._always = [k for k, n in enumerate(self.needs) if n is None]

    def candidates(self, text: str, folded: str | None = None) -> list[int]:
        """Indices of the patterns that could match `text`, in order. `folded`: text.casefold(), if made."""
        if self._folded and folded is None:
            folded = text.casefold()
        touched = {k for s in self._folded if s in folded for k in self._anchored[(True, s)]}
        touched.update(k for s in self._plain if s in text for k in self._anchored[(False, s)])
        if not touched:
            return self._always
        found = [k for k in sorted(touched) if self.needs[k].allows(text, folded)]
        return sorted(found + self._always) if self._always else found


def fast_search(pattern: re.Pattern):
    """`pattern.search`, the same match, faster for a pattern that starts with `\\b`.

    A leading `\\b` keeps `re` from skipping ahead to the pattern's first character: it tries a match at every
    position (2x slower on the pool's responses). The pattern without it matches wherever the pattern does, so
    its first match (found with the skip) is at or before the pattern's: the pattern's own search, started
    there, finds the same match as `pattern.search(text)` (`\\b` still sees the character before `pos`)."""
    source = pattern.pattern
    if not (isinstance(source, str) and source.startswith("\\b") and source[2:3] not in ("", "*", "+", "?", "{")):
        return pattern.search
    try:
        relaxed = re.compile(source[2:], pattern.flags)
    except re.error:
        return pattern.search

    def search(text: str):
        first = relaxed.search(text)
        return None if first is None else pattern.search(text, first.start())

    return search
