"""`clean`: rewrite message text (unicode, whitespace, boilerplate, links); never drops a row."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from curate.progress import track
from curate.rows import ROLES
from curate.steps.base import Regex, StepParams, Transform, as_table, values
from curate.steps.clean.code import code_turns, is_code, looks_like_code
from curate.steps.hints import Gate
from curate.steps.registry import register



# "As an AI language model", "As a large language model trained by OpenAI", ...
_AI = (
    r"as an? (?:ai|artificial intelligence|large language model|language model)"
    r"(?: language model| model| assistant| chatbot)?(?:,? (?:developed|created|trained|made) by \w+)?"
)

DEFAULT_BOILERPLATE = [
    # the disclaimer clause: "As an AI language model, I don't have opinions, but X" -> "X"
    _AI + r",? I(?: do not| don['’]t| cannot| can['’]t| am not| am unable|['’]m not|['’]m unable| have no| lack)\b"
    r"[^.!?\n]*?(?:[.!?]+(?=\s|$)|,\s*(?:but|however)\s+|(?=\n)|$)",
    # the bare lead-in: "As an AI language model, here is ..." -> "Here is ..."
    _AI + r",\s*",
]

# [text](target): the target a scheme (https:, mailto:), a path or an anchor, never a regex's (?:...)
_MD_LINK = re.compile(r"!?\[([^\]\n]*)\]\((?:[A-Za-z][\w+.-]*:|/|\.|#|www\.)[^)\s]*(?:\s+\"[^\"]*\")?\)")
_URL = r"(?:https?://|www\.)[^\s<>\[\]()\"']*[^\s<>\[\]()\"'.,;:!?]"
_BARE_URL = re.compile(rf"[ \t]*(?:\(\s*{_URL}\s*\)|<{_URL}>|{_URL})")
_ARTICLE_REF = re.compile(
    r"(?:^|(?<=[.!?])[ \t]+)[^.!?\n]*\bthis (?:wiki ?how|(?:wiki ?how )?article)\b[^.!?\n]*(?:[.!?]+|$)",
    re.IGNORECASE | re.MULTILINE,
)
# Code is left alone: fenced blocks and inline `code` spans.
_CODE = re.compile(r"^[ \t]*(```|~~~).*?(?:^[ \t]*\1[^\n]*$|\Z)|`[^`\n]+`", re.MULTILINE | re.DOTALL)
_FENCE = re.compile(r"^[ \t]*(```|~~~)")
_INNER_SPACE = re.compile(r"(?<=\S)(?:[ \t]{2,}|\t)")  # runs of blanks, or a lone tab, inside a line
_SENTENCE_START = re.compile(r"(?:^|[.!?\n])\s*$")
_LINE_END_SPACE = re.compile(r"[^\S\n](?:\n|\Z)")  # whitespace ending a line
_ODD_ASCII_SPACE = re.compile(r"[\x0b\x0c\x1c-\x1f]")  # what str.isspace() calls whitespace in ASCII, beyond " \t\n\r"


@register
class Clean(Transform):
    """Rewrite the text of each turn; rows are never dropped and other columns are untouched. Code is never
    changed: fenced blocks and `inline` spans stay as they are, a line that looks like code keeps its inner
    spacing, and a turn that is code (its share of code-looking lines is at least `code_threshold`, or an
    assistant turn of a source marked `kind: code`) only loses trailing whitespace.

    Params:
    - `nfc` (true): Unicode NFC normalisation (of prose; never inside code).
    - `whitespace` (true): CRLF to LF, strip each turn, collapse runs of spaces/tabs inside a line of prose
      to one space, drop trailing spaces, keep at most one blank line in a row. Leading indentation,
      fenced code blocks, inline code and lines that look like code keep their spacing.
    - `boilerplate` (AI-disclaimer phrases): regexes, matched case-insensitively, deleted from
      assistant turns. The defaults remove "As an AI language model, I don't ..." up to the end of
      the sentence (or up to ", but"), and a bare "As an AI language model, " lead-in.
    - `min_words_left` (4): boilerplate is only removed from a turn when at least this many words
      remain; a turn that is nothing but a disclaimer ("I'm sorry, but as an AI language model I
      cannot help") is left whole, so the refusal scorer and filters see it and drop the row, instead
      of keeping a fragment like "I'm sorry, but".
    - `strip_links` (false): in assistant turns, `[text](url)` becomes `text` and bare URLs in prose are
      removed; a URL in quotes (`fetch('https://...')`, `href="..."`) or on a line of code stays.
    - `drop_article_refs` (false): in assistant turns, delete sentences that mention "this article"
      or "this wikiHow" (as LIMA did for wikiHow answers).
    - `code_threshold` (0.5): a turn whose share of code-looking lines is at least this is code (1.0 or more:
      only sources marked `kind: code` are).
    - `roles` (all): which roles to clean. Boilerplate, links and article references only ever
      apply to assistant turns.

    The manifest counts the rows changed (`rows_changed`), the rows each kind of change touched
    (`changed_by`: nfc, whitespace, boilerplate, links, article_refs) and the rows with a turn kept as code
    (`rows_with_code_turns`); `curate inspect RUN --changed` shows a row before and after.
    """

    name = "clean.text"
    aliases = ("clean",)

    class Params(StepParams):
        nfc: bool = True
        whitespace: bool = True
        boilerplate: list[Regex] = DEFAULT_BOILERPLATE
        min_words_left: int = Field(default=4, ge=0)
        strip_links: bool = False
        drop_article_refs: bool = False
        code_threshold: float = Field(default=0.5, gt=0.0)
        roles: list[str] = list(ROLES)

        @field_validator("roles")
        @classmethod
        def _known_roles(cls, roles):
            unknown = [r for r in roles if r not in ROLES]
            if unknown:
                raise ValueError(f"unknown role(s) {unknown}; roles are {list(ROLES)}")
            return roles

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        self._boilerplate = [re.compile(p, re.IGNORECASE) for p in params.boilerplate]
        # the words every match needs: a turn without them skips the regexes
        self._gate = Gate(params.boilerplate, re.IGNORECASE)

    def reads(self) -> dict[str, str]:
        return {"source": "source"}

    def transform(self, batch: pa.Table) -> dict[str, list]:
        batch = as_table(batch)  # a datasets.Dataset works too
        code_sources = {name for name, kind in self.ctx.source_kinds.items() if kind == "code"}
        sources = values(batch, "source") if code_sources else [None] * batch.num_rows
        out = []
        tally: Counter[tuple[str, str | None]] = Counter()  # (count, group) -> sum, in the order first counted
        # whether each turn is code, for all the batch's ASCII turns at once (None: clean_turn asks is_code)
        code = iter(code_turns(pc.struct_field(batch.column("messages").combine_chunks().flatten(), "content"),
                               self.params.code_threshold))
        for messages, source in zip(track(values(batch, "messages"), batch.num_rows, f"{self.ctx.label}: cleaning"),
                                    sources):
            kinds: set[str] = set()
            new = [{**m, "content": self.clean_turn(m["role"], m["content"], kinds, source in code_sources, next(code))}
                   for m in messages]
            for kind in sorted(kinds - {"code"}):
                tally[kind, "changed_by"] += 1
            if "code" in kinds:
                tally["rows_with_code_turns", None] += 1
            tally["rows_changed", None] += new != messages
            out.append(new)
        for (name, group), n in tally.items():  # once per batch: the same counts, in the same order
            self.ctx.count(name, n, group=group)
        return {"messages": out}

    def clean_turn(self, role: str, text: str, kinds: set | None = None, code_source: bool = False,
                   code: bool | None = None) -> str:
        """The cleaned turn; `kinds` collects what changed it (and "code" for a turn kept as code). `code`:
        whether the turn is code, when known (else is_code answers)."""
        p = self.params
        kinds = set() if kinds is None else kinds
        if role not in p.roles:
            return text
        if (code_source and role == "assistant") or (is_code(text, p.code_threshold) if code is None else code):
            kinds.add("code")
            return _trailing_whitespace(text, kinds) if p.whitespace else text
        if p.nfc:
            text = _changed(text, _outside_code(text, _nfc), "nfc", kinds)
        if role == "assistant":
            text = _outside_code(text, lambda part: self._rewrite_prose(part, kinds))
        if p.whitespace:
            text = _changed(text, _tidy_whitespace(text), "whitespace", kinds)
        return text

    def _rewrite_prose(self, text: str, kinds: set) -> str:
        stripped = text
        if self._gate.candidates(text):  # deleting one match can make another: then all of them run
            for pattern in self._boilerplate:
                stripped = _delete(pattern, stripped)
        if stripped != text and len(stripped.split()) >= self.params.min_words_left:
            text = _changed(text, stripped, "boilerplate", kinds)
        # the `in` checks skip the slower regexes on the many turns that cannot match
        if self.params.strip_links:
            new = _MD_LINK.sub(_prose_link, text) if "](" in text else text  # what a markdown link needs
            if "http" in new or "www." in new:  # what a bare URL needs
                new = _BARE_URL.sub(_prose_url, new)
            text = _changed(text, new, "links", kinds)
        if self.params.drop_article_refs:
            low = text.lower()
            if "this" in low and ("article" in low or "wiki" in low):  # what an article reference needs
                text = _changed(text, _ARTICLE_REF.sub("", text), "article_refs", kinds)
        return text


def _changed(old: str, new: str, kind: str, kinds: set) -> str:
    if new != old:
        kinds.add(kind)
    return new


def _nfc(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _line_of(m: re.Match) -> str:
    text = m.string
    end = text.find("\n", m.end())
    return text[text.rfind("\n", 0, m.start()) + 1: end if end >= 0 else len(text)]


def _prose_url(m: re.Match) -> str:
    """Remove a bare URL from prose; keep one in quotes or on a line of code."""
    text = m.string
    url_at = m.start() + len(m.group(0)) - len(m.group(0).lstrip(" \t"))
    before = text[url_at - 1] if url_at > 0 else ""
    return m.group(0) if before in "'\"`=" or looks_like_code(_line_of(m)) else ""


def _prose_link(m: re.Match) -> str:
    """A markdown link in prose becomes its text; one on a line of code stays."""
    return m.group(0) if looks_like_code(_line_of(m)) else m.group(1)


def _trailing_whitespace(text: str, kinds: set) -> str:
    """Code: trailing spaces of each line and blank lines around the turn go; nothing else."""
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    return _changed(text, "\n".join(lines).rstrip(), "whitespace", kinds)


def _outside_code(text: str, fn) -> str:
    """Apply `fn` to the parts of `text` that are not code."""
    if "`" not in text and "~~~" not in text:  # no code at all: the common case, without the regex
        return fn(text)
    parts, last = [], 0
    for m in _CODE.finditer(text):
        parts += [fn(text[last : m.start()]), m.group(0)]
        last = m.end()
    parts.append(fn(text[last:]))
    return "".join(parts)


def _delete(pattern: re.Pattern, text: str) -> str:
    """Delete every match; a sentence that now starts in lower case gets its capital back."""
    out, last = [], 0
    for m in pattern.finditer(text):
        out.append(text[last : m.start()])
        last = m.end()
        if _SENTENCE_START.search("".join(out)) and last < len(text) and text[last].islower():
            out.append(text[last].upper())
            last += 1
    out.append(text[last:])
    return "".join(out)


def _tidy_whitespace(text: str) -> str:
    """Collapse spaces and blank lines outside code (fenced blocks, inline spans, code-looking lines),
    keeping each line's indentation."""
    return text if _tidy(text) else _tidy_lines(text)


def _tidy_lines(text: str) -> str:
    """_tidy_whitespace, line by line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out, in_code, blank_run = [], False, 0
    for line in lines:
        if _FENCE.match(line):
            in_code = not in_code
            blank_run = 0
            out.append(line.rstrip())
            continue
        if in_code:
            out.append(line)
            continue
        line = line.rstrip()
        if ("  " in line or "\t" in line) and not looks_like_code(line):  # the lines _INNER_SPACE may change
            line = _collapse_outside_spans(line)
        blank_run = blank_run + 1 if not line else 0
        if blank_run <= 1:
            out.append(line)
    # Strip the turn; keep the first line's indentation only when later lines are indented too
    # (an answer that opens with indented code).
    while out and not out[0].strip():
        out.pop(0)
    if out and not any(line[:1] in (" ", "\t") for line in out[1:]):
        out[0] = out[0].lstrip()
    return "\n".join(out).rstrip()


def _tidy(text: str) -> bool:
    """True when _tidy_whitespace would leave `text` as it is: no CR, no run of blanks or tab, no whitespace
    ending a line, no two blank lines in a row, no whitespace opening or closing the turn. Most turns are
    tidy: these C-level tests take a tenth of the line loop's time."""
    if "\r" in text or "  " in text or "\t" in text or " \n" in text or "\n\n\n" in text:
        return False
    if text[:1].isspace() or text[-1:].isspace():
        return False
    if text.isascii() and not _ODD_ASCII_SPACE.search(text):
        return True  # then " \n" was the only way whitespace could end a line
    return _LINE_END_SPACE.search(text) is None


def _collapse_outside_spans(line: str) -> str:
    """Inner runs of blanks become one space, except inside `inline code`."""
    if "`" not in line:
        return _INNER_SPACE.sub(" ", line)
    parts = re.split(r"(`[^`]+`)", line)
    return "".join(p if p.startswith("`") and p.endswith("`") and len(p) > 1 else _INNER_SPACE.sub(" ", p)
                   for p in parts)
