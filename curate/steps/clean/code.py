"""Is this line code? Is this turn code? What `clean` asks before it changes a character.

A line looks like code when it has the shape of a program line in a common language: it opens with a
keyword (def, return, for, public, #include, SELECT, ...), closes with `;`, `{` or `}`, opens with a closing
bracket or a markup tag, assigns (`x = ...`, `x += ...`), calls or declares (`name(...)` at the end), or holds
an operator prose does not use (`=>`, `->`, `::`, `++`, `&&`, `||`, `==`, `!=`), or is more symbols than
words (a regex, a path). A turn is code when at least `threshold` of its non-blank lines look like code.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_KEYWORDS = "|".join(re.escape(k) for k in (
    "def class import from return if elif else for foreach while do try except catch finally with async await "
    "yield lambda function var let const new public private protected static void int long float double char "
    "bool boolean string auto struct enum interface package namespace using func fn impl match switch case "
    "break continue throw raise assert print println printf echo console.log System.out std:: end begin "
    "SELECT INSERT UPDATE DELETE CREATE DROP ALTER WHERE JOIN GROUP ORDER HAVING LIMIT VALUES #include #define #! "
    # commands (prose starts with a capital, a shell line with the command)
    "curl wget git pip pip3 npm npx yarn python python3 node java javac gcc g++ go cargo docker kubectl sudo apt "
    "apt-get brew cd ls mkdir rm cp mv cat chmod export ssh scp $"
).split())


def _code_start(space: str, word: str, non_space: str, after_keyword: str) -> str:
    """The shapes a code line opens with, with the classes to use for \\s, \\w and \\S: Python's, or their
    ASCII form for Arrow's regex engine (RE2, which has no lookahead)."""
    return "|".join([
        rf"{space}*(?:{_KEYWORDS}){after_keyword}",  # a keyword opens the line (Python's 'from' too, prose's rarely)
        rf"{space}*[}}\])]",  # opens with a closing bracket
        rf"{space}*</?[A-Za-z!][^>]*>",  # markup: <div ...>, </p>, <!DOCTYPE ...>
        rf"{space}*[A-Za-z_$][{word}.$\[\]'\"]*{space}*(?:[-+*/%&|^]|<<|>>)?=[^=]",  # an assignment
        rf"{space}*[A-Za-z_$][{word}.$]*{space}*\(.*\){space}*[;:{{]?{space}*$",  # a call or a declaration, alone
        rf"{space}*[\"']?[A-Za-z_$][{word}$]*[\"']?{space}*:{space}*{non_space}.*,{space}*$",  # key: value,
    ])


_CODE_START = re.compile(_code_start(r"\s", r"\w", r"\S", r"(?:\b|(?=[\s(:{]))"))  # matched at the line's start

# operators prose does not use (one regex search: twice as fast as ten `in` tests)
_OPERATOR = re.compile("|".join(re.escape(op) for op in ("=>", "->", "::", "++", "&&", "||", "==", "!=", "</", "/>")))


_SYMBOL = re.compile(r"[^\w\s]")
# the ASCII characters _SYMBOL does not match: deleting them from an ASCII line leaves its symbols (bytes.translate
# counts them 2.5x faster than findall, and most lines are ASCII)
_WORD_OR_SPACE = bytes(c for c in range(128) if not _SYMBOL.match(chr(c)))
_LINK = re.compile(r"(?:https?://|www\.)\S+|\]\(")  # URLs and markdown links: symbols, but prose's


def looks_like_code(line: str) -> bool:
    """A line of a program (or a regex, a path: a line of symbols more than words, URLs aside)."""
    stripped = line.strip()
    if not stripped:
        return False
    if stripped[-1] in ";{}" or _CODE_START.match(line) is not None or _OPERATOR.search(line):
        return True  # closes a statement or a block; opens like code; an operator
    rest = _LINK.sub(" ", stripped) if ("http" in stripped or "www." in stripped or "](" in stripped) else stripped
    return len(rest) >= 12 and _symbols(rest) > 0.35 * len(rest)


def _symbols(text: str) -> int:
    """How many characters of `text` are neither word characters nor whitespace."""
    if text.isascii():
        return len(text.encode("ascii").translate(None, _WORD_OR_SPACE))
    return len(_SYMBOL.findall(text))


def is_code(text: str, threshold: float) -> bool:
    """Whether at least `threshold` of the non-blank lines of `text` look like code (never, for a blank text).
    Stops as soon as the answer is known: most turns are decided by their first lines."""
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return False
    n = len(lines)
    code = other = 0
    for line in lines:  # the shares are compared as code / n >= threshold, exactly as a full count would be
        if looks_like_code(line):
            code += 1
            if code / n >= threshold:
                return True
        else:
            other += 1
            if (n - other) / n < threshold:
                return False
    return code / n >= threshold


# -- the same questions for many turns at once, in Arrow ------------------------------------------------------
# An ASCII turn is split into lines and each test runs over all the lines in Arrow's compute functions (RE2
# regexes, where \s, \w and \S become the ASCII classes Python's give: str.isspace() accepts \x1c-\x1f too);
# a turn with any other character goes through `is_code` (tests/steps/clean/test_clean.py compares the two).
_ASCII_SPACES = "".join(chr(c) for c in range(128) if chr(c).isspace())
_S = "[" + "".join(f"\\x{ord(c):02x}" for c in _ASCII_SPACES) + "]"
_NS = "[^" + _S[1:]
_CODE_START_ASCII = "^(?:" + _code_start(_S, "0-9A-Za-z_", _NS, rf"(?:\b|{_S[:-1]}(:{{])") + ")"
_LINK_ASCII = rf"(?:https?://|www\.){_NS}+|\]\("
_IS_SYMBOL = np.frombuffer(bytes(0 if c in _WORD_OR_SPACE else 1 for c in range(256)), dtype=np.uint8)
_CLOSES = np.frombuffer(bytes(1 if chr(c) in ";{}" else 0 for c in range(256)), dtype=np.uint8)


def code_turns(texts: pa.Array, threshold: float) -> list[bool | None]:
    """`is_code(text, threshold)` of each ASCII text, None for the others (null or not ASCII: `is_code` answers
    those)."""
    texts = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    ascii_ = np.asarray(pc.fill_null(pc.string_is_ascii(texts), False))
    out: list[bool | None] = [None] * len(texts)
    which = np.flatnonzero(ascii_)
    if not len(which):
        return out
    split = pc.split_pattern(texts.filter(pa.array(ascii_)), "\n")
    nonblank, code = code_lines(split.flatten())
    owner = np.repeat(np.arange(len(which)), np.diff(split.offsets.to_numpy()))
    n = np.bincount(owner, weights=nonblank, minlength=len(which))
    found = np.bincount(owner, weights=code, minlength=len(which))
    with np.errstate(invalid="ignore", divide="ignore"):  # no non-blank line: not code
        answers = (n > 0) & (found / n >= threshold)  # the shares is_code compares
    for i, answer in zip(which.tolist(), answers.tolist()):
        out[i] = answer
    return out


def code_lines(lines: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """For ASCII lines: (non-blank, `looks_like_code`) of each."""
    stripped = pc.ascii_trim(lines, characters=_ASCII_SPACES)
    offsets, data = _bytes_of(stripped)
    nonblank = np.diff(offsets) > 0
    code = np.zeros(len(lines), dtype=bool)
    code[nonblank] = _CLOSES[data[offsets[1:][nonblank] - 1]] == 1  # the last character
    code |= np.asarray(pc.match_substring_regex(lines, _CODE_START_ASCII))
    code |= np.asarray(pc.match_substring_regex(lines, _OPERATOR.pattern))
    # the symbol test, for the lines still open: at least 12 characters (a link only shortens a line)
    length = np.diff(offsets)
    todo = np.flatnonzero(~code & (length >= 12))
    symbols = _symbol_counts(offsets[todo], offsets[todo + 1], data)
    linked = np.asarray(pc.match_substring_regex(stripped.take(pa.array(todo)), "http|www\\.|\\]\\("))
    if linked.any():  # a link counts as one space (as looks_like_code's _LINK.sub)
        at = np.flatnonzero(linked)
        rest = pc.replace_substring_regex(stripped.take(pa.array(todo[at])), _LINK_ASCII, " ")
        rest_offsets, rest_data = _bytes_of(rest)
        length[todo[at]] = np.diff(rest_offsets)
        symbols[at] = _symbol_counts(rest_offsets[:-1], rest_offsets[1:], rest_data)
    code[todo] = (length[todo] >= 12) & (symbols > 0.35 * length[todo])
    return nonblank, nonblank & code


def _bytes_of(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string array's offsets (into its data) and data bytes."""
    _, offsets, data = strings.buffers()
    width = np.int64 if pa.types.is_large_string(strings.type) else np.int32
    offsets = np.frombuffer(offsets, dtype=width)[strings.offset: strings.offset + len(strings) + 1] \
        if offsets is not None else np.zeros(1, dtype=width)
    return offsets, np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)


def _symbol_counts(starts: np.ndarray, stops: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Per string data[start:stop] (non-empty, ASCII: a byte a character): its characters that are neither
    word characters nor whitespace. One sum per string (no running total over all the bytes: its pages
    cost more than the sums)."""
    if not len(starts):
        return np.zeros(0, dtype=np.int64)
    flags = _IS_SYMBOL[data[: int(stops[-1])]]  # the last string's sum runs to the end
    bounds = np.empty(2 * len(starts), dtype=np.intp)
    bounds[0::2], bounds[1::2] = starts, stops
    return np.add.reduceat(flags, bounds[:-1], dtype=np.int64)[0::2]  # (the sums between strings are dropped)
