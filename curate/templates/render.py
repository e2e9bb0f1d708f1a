"""Render messages with a chat template and mark the assistant spans (the text training learns).

Every template (built-in, a tokenizer's `chat_template`, or the user's own) is Jinja2 run in
`ImmutableSandboxedEnvironment`, as transformers does, because templates from the Hub or a recipe are
untrusted code. Unlike a plain sandbox, an unsafe attribute is an error, not a silent empty string.

Spans are found generically: render the whole conversation, then find each assistant message's content in
order, each search starting after the previous span (and after the rendered prompt up to that turn, when the
template renders prefixes consistently, so a reply repeated in the prompt is not mistaken for the reply).
An end-of-turn marker right after the content joins the span so that training learns to stop.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import jinja2
import pyarrow as pa
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from curate.errors import CurateError
from curate.templates.spec import FORMATS_DIR, TemplateSpec

# (bos_token, eos_token) of the built-in formats; the end-of-turn markers are listed below.
BUILTIN_TOKENS = {
    "chatml": ("", "<|im_end|>"),
    "llama-3": ("<|begin_of_text|>", "<|eot_id|>"),
    "alpaca": ("<s>", "</s>"),
    "vicuna": ("<s>", "</s>"),
}

# Strings that end an assistant turn in common templates; one found right after a reply joins its span.
END_MARKERS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|END_OF_TURN_TOKEN|>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "</s>",
)


MAX_RESULT = 10_000_000  # the longest string or list a template may build with `*` (characters or items)


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def unsafe_undefined(self, obj, attribute):
        # The stock sandbox renders unsafe attributes as "", hiding an escape attempt; fail instead.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def call_binop(self, context, operator, left, right):
        # `"x" * 10**10` or `9 ** 9 ** 9` would exhaust memory or time before any limit is met.
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 1000:
            raise SecurityError(f"the exponent {right} is too large for a template")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > MAX_RESULT:
                    raise SecurityError(f"a template may not build a value of more than {MAX_RESULT} items")
        return super().call_binop(context, operator, left, right)


class _Generation(Extension):
    """Accept transformers' `{% generation %}...{% endgeneration %}` tags; they only render their body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


def _raise_exception(message):
    raise jinja2.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # Jinja's own tojson escapes HTML; chat templates expect plain JSON (as in transformers).
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


class _Dict:
    # `dict(...)` for templates without exposing the dict type itself.
    def __call__(self, *args, **kwargs):
        return dict(*args, **kwargs)


class _Namespace(jinja2.utils.Namespace):
    # Namespaces refuse underscore names so a template cannot reach interpreter internals through them.
    def __init__(*args, **kwargs):
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            _Namespace._check(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name, value):
        _Namespace._check(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name):
        if isinstance(name, str) and name.startswith("_"):
            raise SecurityError(f"templates cannot store underscore attributes on a namespace ({name!r})")


def sandbox_environment(date: str | None = None) -> jinja2.Environment:
    """Curate's Jinja sandbox. Nothing in it depends on the clock or chance, so the same rows render to the
    same bytes: no `lipsum` (random text); `strftime_now` formats the recipe's fixed `template.date` and is
    left undefined without one (chat templates then use their own default date). No loader: `{% include %}`
    and `{% import %}` are errors."""
    env = _Sandbox(trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, loopcontrols])
    env.globals.pop("lipsum", None)
    env.filters.pop("random", None)  # a random item of a list: not reproducible
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    if date is not None:
        fixed = datetime.fromisoformat(date)
        env.globals["strftime_now"] = lambda fmt: fixed.strftime(fmt)
    env.globals["dict"] = _Dict()
    env.globals["namespace"] = _Namespace
    return env


SPANS_TYPE = pa.list_(pa.list_(pa.int64()))  # the type of `assistant_spans`

# What a template can raise besides jinja2's own errors: a wrong type, a too-large range (OverflowError),
# an include without a loader (TypeError), runaway recursion.
RENDER_ERRORS = (jinja2.TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError,
                 ZeroDivisionError, OverflowError, RecursionError, MemoryError)


class Templater:
    """A chat template, loaded and compiled once, that renders rows into training text.

    `Templater(spec, base_dir=".", where="template")`: `spec` is a TemplateSpec, a dict of its fields, a
    built-in format name, or None (ChatML). `base_dir` resolves a relative `jinja_file` (and a relative
    tokenizer path, when it exists there); `where` prefixes error messages.

    - `render(messages, row=None) -> (text, spans)`: spans are [start, end) character offsets of each
      assistant turn's content plus its end-of-turn marker; everything outside them is prompt.
    - `apply(ds) -> ds` adds the columns `text` and `assistant_spans` (a list of [start, end]), replacing
      them if present.
    - `describe() -> dict`: what the manifest should record (source, name, tokens, template hash).
    """

    def __init__(self, spec: TemplateSpec | dict | str | None = None, *, base_dir: str | Path = ".", where: str = "template"):
        self.spec = _coerce(spec, where)
        self.where = where
        self.base_dir = Path(base_dir)
        self.variables: dict = {}
        markers = list(END_MARKERS)
        s = self.spec
        if s.source == "builtin":
            self.name = s.format
            self.source_text = (FORMATS_DIR / f"{s.format}.jinja").read_text(encoding="utf-8")
            bos, eos = BUILTIN_TOKENS.get(s.format, ("", ""))
        elif s.source == "tokenizer":
            self.name = f"tokenizer {s.tokenizer}"
            self.source_text, bos, eos, self.variables = self._from_tokenizer()
        else:
            if s.jinja is not None:
                self.name, self.source_text = "inline jinja", s.jinja
            else:
                path = Path(s.jinja_file)
                path = path if path.is_absolute() else self.base_dir / path
                if not path.is_file():
                    raise CurateError(f"no template file {str(path)!r}", f"{where}.jinja_file")
                self.name, self.source_text = str(path), path.read_text(encoding="utf-8")
            bos, eos = "", ""
        bos = s.bos_token if s.bos_token is not None else bos
        eos = s.eos_token if s.eos_token is not None else eos
        markers += [eos] + list(s.end_markers)
        self.template = self._compile()
        if s.source == "jinja":
            self._check_tokens_bound(bos, eos)
        self.variables.update(bos_token=bos if s.add_bos else "", eos_token=eos if s.add_eos else "")
        self._bos, self._eos = bos, eos
        markers = sorted({m for m in markers if m}, key=len, reverse=True)  # longest first wins the alternation
        self._end = re.compile(r"\s*(?:" + "|".join(map(re.escape, markers)) + ")") if markers else None

    # -- loading ---------------------------------------------------------------------------------

    def _from_tokenizer(self):
        s = self.spec
        try:
            from transformers import AutoTokenizer
        except ImportError as e:  # pragma: no cover - transformers is a core dependency
            raise CurateError(f"a tokenizer template needs transformers ({e})", f"{self.where}.tokenizer") from None
        path = s.tokenizer
        local = self.base_dir / path
        if not Path(path).is_absolute() and local.exists():
            path = str(local)
        try:
            tok = AutoTokenizer.from_pretrained(path, trust_remote_code=s.trust_remote_code)
        except Exception as e:  # loading fails in many library-specific ways; all mean the same to the user
            raise CurateError(f"could not load tokenizer {s.tokenizer!r}: {e}", f"{self.where}.tokenizer") from None
        template = getattr(tok, "chat_template", None)
        if isinstance(template, dict):  # several named templates: the default one is for chat
            template = template.get("default")
        if not template:
            raise CurateError(
                f"tokenizer {s.tokenizer!r} has no chat_template; use a built-in format or give `jinja`",
                f"{self.where}.tokenizer",
            )
        variables = dict(tok.special_tokens_map)  # templates may use any of them, as in apply_chat_template
        return template, tok.bos_token or "", tok.eos_token or "", variables

    def _compile(self):
        try:
            return sandbox_environment(self.spec.date).from_string(self.source_text)
        except jinja2.TemplateSyntaxError as e:
            raise CurateError(f"template {self.name!r} does not parse (line {e.lineno}): {e.message}", self.where) from None

    def _check_tokens_bound(self, bos: str, eos: str) -> None:
        # A user template that writes bos_token/eos_token with nothing bound would silently lose them.
        from jinja2 import meta

        used = meta.find_undeclared_variables(sandbox_environment().parse(self.source_text))
        for name, value, flag in (("bos_token", bos, self.spec.add_bos), ("eos_token", eos, self.spec.add_eos)):
            if name in used and flag and not value:
                raise CurateError(
                    f"template {self.name!r} uses {name} but none is set; set `{name}` (or add_{name[:3]}: false)",
                    f"{self.where}.{name}",
                )

    # -- rendering -------------------------------------------------------------------------------

    def _render(self, messages: list[dict], add_generation_prompt: bool) -> str:
        return self.template.render(messages=messages, add_generation_prompt=add_generation_prompt, **self.variables)

    def prompt(self, messages) -> str:
        """The conversation followed by the assistant header (add_generation_prompt=True)."""
        return self._render(_plain(messages), add_generation_prompt=True)

    def render(self, messages, row: str | None = None) -> tuple[str, list[tuple[int, int]]]:
        """Text of the conversation and the [start, end) span of each assistant turn in it."""
        messages = _plain(messages)
        label = f"row {row!r}" if row is not None else "this row"
        try:
            text = self._render(messages, add_generation_prompt=False)
        except SecurityError as e:
            raise CurateError(f"template {self.name!r} tried something the sandbox forbids: {e}", self.where) from None
        except RENDER_ERRORS as e:
            raise CurateError(f"template {self.name!r} failed on {label}: {render_problem(e)}", self.where) from None
        return text, self._spans(messages, text, label)

    def _spans(self, messages: list[dict], text: str, label: str) -> list[tuple[int, int]]:
        spans, cursor, turn = [], 0, 0
        for k, m in enumerate(messages):
            if m.get("role") != "assistant":
                continue
            turn += 1
            start = max(cursor, self._prompt_end(messages[:k], text))
            content = m.get("content") or ""
            pos = text.find(content, start)
            if pos < 0 and content.strip() != content:
                content = content.strip()  # templates often trim replies (Llama 3, Llama 2, ...)
                pos = text.find(content, start)
            if pos < 0:
                raise CurateError(
                    f"template {self.name!r} changed assistant turn {turn} of {label} so that its text is not in "
                    "the rendered output; its span cannot be marked",
                    self.where,
                )
            end = pos + len(content)
            if self._end is not None and (marker := self._end.match(text, end)):
                end = marker.end()
            spans.append((pos, end))
            cursor = end
        return spans

    def _prompt_end(self, history: list[dict], text: str) -> int:
        """Where the reply after `history` can start: the end of the rendered prompt, if it prefixes `text`."""
        try:
            prompt = self._render(history, add_generation_prompt=True)
        except RENDER_ERRORS:  # e.g. a template that insists on a final assistant turn
            return 0
        return len(prompt) if text.startswith(prompt) else 0

    def apply(self, rows):
        """`rows` (a pa.Table, or a datasets.Dataset) with `text` and `assistant_spans` (list of [start, end])
        for every row, replacing them if present; the same type comes back."""
        table = rows if isinstance(rows, pa.Table) else rows.with_format("arrow")[:]
        ids = table.column("id").to_pylist() if "id" in table.column_names else None
        texts, spans = [], []
        for i, messages in enumerate(table.column("messages").to_pylist()):
            text, sp = self.render(messages, row=ids[i] if ids else str(i))
            texts.append(text)
            spans.append([[a, b] for a, b in sp])
        table = table.drop_columns([c for c in ("text", "assistant_spans") if c in table.column_names])
        table = table.append_column("text", pa.array(texts, pa.string()))
        table = table.append_column("assistant_spans", pa.array(spans, SPANS_TYPE))
        if isinstance(rows, pa.Table):
            return table
        from datasets import Dataset

        return Dataset(table.combine_chunks())

    def describe(self) -> dict:
        """The facts a manifest needs to reproduce the rendering."""
        s = self.spec
        return {
            "source": s.source,
            "name": self.name,
            "add_bos": s.add_bos,
            "add_eos": s.add_eos,
            "bos_token": self._bos,
            "eos_token": self._eos,
            "template_sha256": hashlib.sha256(self.source_text.encode("utf-8")).hexdigest(),
        }


def render_problem(e: BaseException) -> str:
    if isinstance(e, TypeError) and "no loader" in str(e):
        return "templates cannot {% include %} or {% import %} other templates"
    return str(e) if isinstance(e, jinja2.TemplateError) else f"{type(e).__name__}: {e}"


def _coerce(spec, where: str) -> TemplateSpec:
    if spec is None:
        return TemplateSpec()
    if isinstance(spec, TemplateSpec):
        return spec
    if isinstance(spec, str):
        spec = {"format": spec}
    try:
        return TemplateSpec(**spec)
    except Exception as e:  # pydantic's message already names the field and the fix
        raise CurateError(str(e), where) from None


def _plain(messages) -> list[dict]:
    # Arrow rows may carry None for absent keys; templates handle a missing key better (as transformers does).
    return [{k: v for k, v in dict(m).items() if v is not None} for m in messages]


@lru_cache(maxsize=8)
def cached_templater(spec_json: str, base_dir: str) -> Templater:
    """One Templater per spec and folder in a process (a tokenizer is loaded once)."""
    return Templater(TemplateSpec.model_validate_json(spec_json), base_dir=base_dir)


def render(messages, fmt: TemplateSpec | dict | str | Templater | None = None, *, base_dir: str | Path = ".", row: str | None = None):
    """Render one conversation: `(text, assistant_spans)`.

    `fmt` is a Templater, a TemplateSpec, a dict of its fields or a built-in format name. Templaters are
    cached by spec, so a tokenizer is loaded once; for many rows use `Templater(...).apply(ds)`.
    """
    if not isinstance(fmt, Templater):
        fmt = cached_templater(_coerce(fmt, "template").model_dump_json(), str(base_dir))
    return fmt.render(messages, row=row)
