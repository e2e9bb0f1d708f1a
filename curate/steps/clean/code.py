"""Is this line code? Is this turn code? What `clean` asks before it changes a character.

A line looks like code when it has the shape of a program line in a common language: it opens with a
keyword (def, return, for, public, #include, SELECT, ...), closes with `;`, `{` or `}`, opens with a closing
bracket or a markup tag, assigns (`x = ...`, `x += ...`), calls or declares (`name(...)` at the end), or holds
an operator prose does not use (`=>`, `->`, `::`, `++`, `&&`, `||`, `==`, `!=`), or is more symbols than
words (a regex, a path). A turn is code when at least `threshold` of its non-blank lines look like code.
"""

from __future__ import annotations

import re

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
_CODE_START = re.compile(  # matched at the start of the line only: one try, not one per position
    rf"""
      \s*(?:{_KEYWORDS})(?:\b|(?=[\s(:{{]))   # a keyword opens the line (Python's 'from' too, prose's rarely)
    | \s*[}}\])]                              # opens with a closing bracket
    | \s*</?[A-Za-z!][^>]*>                   # markup: <div ...>, </p>, <!DOCTYPE ...>
    | \s*[A-Za-z_$][\w.$\[\]'"]*\s*(?:[-+*/%&|^]|<<|>>)?=[^=]   # an assignment
    | \s*[A-Za-z_$][\w.$]*\s*\(.*\)\s*[;:{{]?\s*$              # a call or a declaration, alone on its line
    | \s*["']?[A-Za-z_$][\w$]*["']?\s*:\s*\S.*,\s*$            # a key: value, of an object literal
    """,
    re.VERBOSE,
)
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
