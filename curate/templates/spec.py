"""The `template` section of a recipe: which chat template turns messages into training text."""

from __future__ import annotations

import datetime
from pathlib import Path

from pydantic import field_validator, model_validator

from curate.errors import did_you_mean
from curate.strict import StrictModel

FORMATS_DIR = Path(__file__).parent / "formats"
SOURCES = ("tokenizer", "jinja")


def builtin_formats() -> list[str]:
    """Names of the built-in formats: one `formats/<name>.jinja` file each."""
    return sorted(p.stem for p in FORMATS_DIR.glob("*.jinja"))


class TemplateSpec(StrictModel):
    """Where the chat template comes from, and the markers it may emit.

    One source is used:
    - a built-in format: `format: chatml` (default), `alpaca`, `llama-3`, `vicuna`;
    - a tokenizer's `chat_template`: `tokenizer: <hub id or local path>` (`format` may be left out or set
      to "tokenizer"); `trust_remote_code` (default False) is passed to AutoTokenizer;
    - a Jinja2 template: `jinja: <template text>` or `jinja_file: <path>` (relative to the recipe);
      `format` may be left out or set to "jinja".
    Templates see `messages`, `add_generation_prompt`, `bos_token`, `eos_token` (and, for a tokenizer, its
    other special tokens), as with transformers' `apply_chat_template`.

    - `add_bos` (default True): the text starts with the BOS the template writes (`bos_token`). The text is
      the complete training string: tokenize it with `add_special_tokens=False`, or set this False and let
      the tokenizer add BOS. False binds `bos_token` to "".
    - `add_eos` (default True): formats that end an assistant turn with `eos_token` (alpaca, vicuna, many
      tokenizer templates) write it. False binds `eos_token` to "". ChatML's <|im_end|> and Llama 3's
      <|eot_id|> are part of the format and always written.
    - `bos_token` / `eos_token`: override the strings bound to those names (default: the built-in format's,
      the tokenizer's; a user Jinja template that uses them must set them).
    - `end_markers`: extra strings that end an assistant turn, added to the known ones (<|im_end|>,
      <|eot_id|>, </s>, <|endoftext|>, ...); an end marker right after an assistant turn belongs to its span.
    - `date` (null): the date `strftime_now` gives templates that print today's date (Llama 3.1+), as
      YYYY-MM-DD. Never the clock: the same recipe renders the same bytes on any day. Without it
      `strftime_now` is undefined and such templates use their own default date.
    """

    format: str = "chatml"
    tokenizer: str | None = None
    jinja: str | None = None
    jinja_file: str | None = None
    trust_remote_code: bool = False
    add_bos: bool = True
    add_eos: bool = True
    bos_token: str | None = None
    eos_token: str | None = None
    end_markers: list[str] = []
    date: str | None = None

    @field_validator("date")
    @classmethod
    def _iso_date(cls, v):
        if v is not None:
            try:
                datetime.date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"date must be YYYY-MM-DD, not {v!r}") from None
        return v

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in ("tokenizer", "jinja", "jinja_file") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one template source, not {' and '.join(given)}")
        explicit = "format" in self.model_fields_set
        builtins = builtin_formats()
        if self.format not in builtins and self.format not in SOURCES:
            choices = builtins + list(SOURCES)
            raise ValueError(
                f"unknown format {self.format!r}{did_you_mean(self.format, choices)}; "
                f"built-in formats: {', '.join(builtins)}; or give `tokenizer`, `jinja` or `jinja_file`"
            )
        if self.tokenizer is not None:
            if explicit and self.format != "tokenizer":
                raise ValueError(f"format {self.format!r} and tokenizer {self.tokenizer!r} both name a template; keep one")
            self.format = "tokenizer"
        elif self.jinja is not None or self.jinja_file is not None:
            if explicit and self.format != "jinja":
                raise ValueError(f"format {self.format!r} and {given[0]} both name a template; keep one")
            self.format = "jinja"
        elif self.format == "tokenizer":
            raise ValueError("format: tokenizer needs `tokenizer`, a hub id or local path")
        elif self.format == "jinja":
            raise ValueError("format: jinja needs `jinja` (template text) or `jinja_file`")
        return self

    @property
    def source(self) -> str:
        """"builtin", "tokenizer" or "jinja"."""
        return self.format if self.format in SOURCES else "builtin"
