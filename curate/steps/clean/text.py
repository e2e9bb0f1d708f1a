"""`clean`: rewrite message text (unicode, whitespace, boilerplate, links); never drops a row."""

from __future__ import annotations

import re
import unicodedata

import pyarrow as pa
from pydantic import Field, field_validator

from curate.progress import track
from curate.registry import register
from curate.rows import ROLES, mentions
from curate.steps.base import Regex, StepParams, Transform, as_table, values



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

AI_HINTS = ("as an ai", "as a ai", "language model", "artificial intelligence")  # casefolded
_MD_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
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


@register
class Clean(Transform):
    """Rewrite the text of each turn; rows are never dropped and other columns are untouched.

    Params:
    - `nfc` (true): Unicode NFC normalisation.
    - `whitespace` (true): CRLF to LF, strip each turn, collapse runs of spaces/tabs inside a line to
      one space, drop trailing spaces, keep at most one blank line in a row. Leading indentation and
      fenced code blocks are kept as they are.
    - `boilerplate` (AI-disclaimer phrases): regexes, matched case-insensitively, deleted from
      assistant turns. The defaults remove "As an AI language model, I don't ..." up to the end of
      the sentence (or up to ", but"), and a bare "As an AI language model, " lead-in.
    - `min_words_left` (4): boilerplate is only removed from a turn when at least this many words
      remain; a turn that is nothing but a disclaimer ("I'm sorry, but as an AI language model I
      cannot help") is left whole, so the refusal scorer and filters see it and drop the row, instead
      of keeping a fragment like "I'm sorry, but".
    - `strip_links` (false): in assistant turns, `[text](url)` becomes `text` and bare URLs are removed.
    - `drop_article_refs` (false): in assistant turns, delete sentences that mention "this article"
      or "this wikiHow" (as LIMA did for wikiHow answers).
    - `roles` (all): which roles to clean. Boilerplate, links and article references only ever
      apply to assistant turns.
    Boilerplate, links and article references are never touched inside code (fenced or `inline`).
    """

    name = "clean"

    class Params(StepParams):
        nfc: bool = True
        whitespace: bool = True
        boilerplate: list[Regex] = DEFAULT_BOILERPLATE
        min_words_left: int = Field(default=4, ge=0)
        strip_links: bool = False
        drop_article_refs: bool = False
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
        # every default pattern needs one of these words: a turn without any skips the regexes
        self._hints = AI_HINTS if params.boilerplate == DEFAULT_BOILERPLATE else None

    def transform(self, batch: pa.Table) -> dict[str, list]:
        batch = as_table(batch)  # a datasets.Dataset works too
        out, changed = [], 0
        for messages in track(values(batch, "messages"), batch.num_rows, f"{self.ctx.label}: cleaning"):
            new = [{**m, "content": self.clean_turn(m["role"], m["content"])} for m in messages]
            changed += new != messages
            out.append(new)
        self.ctx.count("rows_changed", changed)
        return {"messages": out}

    def clean_turn(self, role: str, text: str) -> str:
        p = self.params
        if role not in p.roles:
            return text
        if p.nfc:
            text = unicodedata.normalize("NFC", text)
        if role == "assistant":
            text = _outside_code(text, self._rewrite_prose)
        if p.whitespace:
            text = _tidy_whitespace(text)
        return text

    def _rewrite_prose(self, text: str) -> str:
        stripped = text
        if self._hints is None or mentions(text, self._hints):
            for pattern in self._boilerplate:
                stripped = _delete(pattern, stripped)
        if stripped != text and len(stripped.split()) >= self.params.min_words_left:
            text = stripped
        # the `in` checks skip the slower regexes on the many turns that cannot match
        if self.params.strip_links:
            if "](" in text:  # what a markdown link needs
                text = _MD_LINK.sub(r"\1", text)
            if "http" in text or "www." in text:  # what a bare URL needs
                text = _BARE_URL.sub("", text)
        if self.params.drop_article_refs:
            low = text.lower()
            if "this" in low and ("article" in low or "wiki" in low):  # what an article reference needs
                text = _ARTICLE_REF.sub("", text)
        return text


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
    """Collapse spaces and blank lines outside fenced code, keeping each line's indentation."""
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
        if "  " in line or "\t" in line:  # the only lines _INNER_SPACE can change
            line = _INNER_SPACE.sub(" ", line)
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
