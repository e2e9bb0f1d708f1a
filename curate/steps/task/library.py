"""Task template libraries: YAML files of Jinja2 phrasings that turn structured rows into instructions.

A library is one YAML file (the shipped ones are `curate/templates/tasks/<task>.yaml`; a recipe may
name its own). Its format is documented at the top of every shipped file:

    task: multiple_choice            # a name, for the manifest
    description: ...                 # free text
    fields: {question: "...", ...}   # the row fields the phrasings use (a mapping name -> what, or a list)
    variables:                       # optional: values a recipe may set (`variables:` of the step)
      answer_style: {default: letter_text, choices: [letter, letter_text], description: ...}
    macros: |                        # optional Jinja2 put before every template (macros, sets)
      {% macro options() %}...{% endmacro %}
    shot_separator: "\n\n"           # optional: between few-shot examples laid out inline
    answer_separator: "\n"           # optional: between an inline example's prompt and its answer
    phrasings:
      - id: question_options         # unique in the file
        system: ...                  # optional; a system turn when it renders to non-empty text
        user: ...                    # the user turn
        assistant: ...               # the assistant turn
        shot_separator / answer_separator: optional per-phrasing overrides

Templates run in curate's Jinja2 sandbox (the one chat templates use, `curate.templates.render`) with
StrictUndefined: a field a row lacks is an error, never an empty string; optional fields are tested
with `is defined`. There is no clock or randomness in a template's reach, so a rendering depends only
on the row, the phrasing and the variables.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import meta as jinja_meta
from jinja2.sandbox import SecurityError
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from curate.errors import CurateError, did_you_mean
from curate.strict import StrictModel
from curate.templates.render import RENDER_ERRORS, render_problem, sandbox_environment
from curate.templates.spec import FORMATS_DIR

TASKS_DIR = FORMATS_DIR.parent / "tasks"
LETTERS = [chr(ord("A") + i) for i in range(26)]
PARTS = ("system", "user", "assistant")
# Names the step puts in every template's context (row fields of the same name are shadowed by them).
RESERVED = ("prompt", "response", "shots", "letters")


def shipped_tasks() -> list[str]:
    """Names of the shipped libraries: one `templates/tasks/<name>.yaml` file each."""
    return sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))


def shipped_path(task: str) -> Path:
    if task not in shipped_tasks():
        raise ValueError(f"unknown task {task!r}{did_you_mean(task, shipped_tasks())}; shipped tasks: {shipped_tasks()}")
    return TASKS_DIR / f"{task}.yaml"


# -- the file format -------------------------------------------------------------------------------


class Variable(StrictModel):
    """A value the recipe may set. Without a `default` it is undefined unless set (or a row field)."""

    default: Any = None
    choices: list[Any] | None = None
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v):
        # `name: value` is short for `name: {default: value}`
        return v if isinstance(v, dict) else {"default": v}

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set


class PhrasingSpec(StrictModel):
    id: str
    user: str
    assistant: str
    system: str | None = None
    shot_separator: str | None = None
    answer_separator: str | None = None

    @field_validator("id")
    @classmethod
    def _plain_id(cls, v):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", v):
            raise ValueError(f"phrasing id {v!r} may only use letters, digits, '_', '.' and '-'")
        return v


class LibrarySpec(StrictModel):
    task: str
    description: str = ""
    fields: dict[str, str] = Field(default_factory=dict)
    variables: dict[str, Variable] = Field(default_factory=dict)
    macros: str = ""
    shot_separator: str = "\n\n"
    answer_separator: str = "\n"
    phrasings: list[PhrasingSpec]

    @field_validator("fields", mode="before")
    @classmethod
    def _fields_list(cls, v):
        return {name: "" for name in v} if isinstance(v, list) else v

    @field_validator("variables")
    @classmethod
    def _not_reserved(cls, v):
        clash = sorted(set(v) & set(RESERVED))
        if clash:
            raise ValueError(f"variables {clash} clash with names every template gets: {list(RESERVED)}")
        for name, var in v.items():
            if var.choices is not None and var.has_default and var.default not in var.choices:
                raise ValueError(f"variable {name!r}: default {var.default!r} is not one of {var.choices}")
        return v

    @field_validator("phrasings")
    @classmethod
    def _unique_ids(cls, v):
        if not v:
            raise ValueError("a library needs at least one phrasing")
        seen = set()
        for p in v:
            if p.id in seen:
                raise ValueError(f"phrasing id {p.id!r} is used twice")
            seen.add(p.id)
        return v


# -- compiled --------------------------------------------------------------------------------------


@dataclass
class Phrasing:
    id: str
    templates: dict[str, jinja2.Template]  # part -> compiled template ("system" only when given)
    shot_separator: str
    answer_separator: str
    lays_out_shots: bool  # its templates use `shots` themselves


@dataclass
class RenderError(Exception):
    """A rendering failed; the step turns it into a CurateError naming the row."""

    phrasing: str
    part: str
    kind: str  # "missing" | "sandbox" | "error" | "empty"
    detail: str
    missing: str | None = None  # the field a row lacks, for kind == "missing"


@dataclass
class Library:
    spec: LibrarySpec
    name: str  # how messages name the file: "tasks/multiple_choice.yaml" or the path as given
    sha256: str
    phrasings: dict[str, Phrasing] = field(default_factory=dict)

    def variables(self, overrides: dict) -> dict:
        """The library's variable values with the step's `variables` applied; ValueError names a bad one."""
        declared = self.spec.variables
        values = {name: v.default for name, v in declared.items() if v.has_default}
        for name, value in overrides.items():
            if name not in declared:
                known = sorted(declared) or "none"
                raise ValueError(f"{self.name} declares no variable {name!r}{did_you_mean(name, declared)}; its variables: {known}")
            choices = declared[name].choices
            if choices is not None and value not in choices:
                raise ValueError(f"variable {name!r} must be one of {choices}, got {value!r}")
            values[name] = value
        return values

    def select(self, wanted: list[str] | None) -> list[Phrasing]:
        """The phrasings named in `wanted` (all when None); ValueError with did-you-mean for an unknown id."""
        known = list(self.phrasings)
        if wanted is None:
            return list(self.phrasings.values())
        for pid in wanted:
            if pid not in self.phrasings:
                raise ValueError(f"{self.name} has no phrasing {pid!r}{did_you_mean(pid, known)}; its phrasings: {known}")
        if len(set(wanted)) != len(wanted):
            raise ValueError(f"a phrasing id is listed twice: {wanted}")
        return [self.phrasings[pid] for pid in wanted]

    def render(self, phrasing: Phrasing, context: dict) -> dict[str, str]:
        """{part: text} for one row's context; parts stripped; an empty system is left out."""
        out = {}
        for part, template in phrasing.templates.items():
            try:
                text = template.render(context).strip()
            except SecurityError as e:
                raise RenderError(phrasing.id, part, "sandbox", str(e)) from None
            except jinja2.UndefinedError as e:
                raise RenderError(phrasing.id, part, "missing", str(e), _missing_name(str(e))) from None
            except jinja2.TemplateError as e:
                raise RenderError(phrasing.id, part, "error", str(e)) from None
            except RENDER_ERRORS as e:
                raise RenderError(phrasing.id, part, "error", render_problem(e)) from None
            if not text and part != "system":
                raise RenderError(phrasing.id, part, "empty", "rendered to empty text")
            if text:
                out[part] = text
        return out


_UNDEFINED = (
    re.compile(r"^'([^']+)' is undefined"),
    re.compile(r"has no attribute '([^']+)'"),
    re.compile(r"has no element (.+)$"),
)


def _missing_name(message: str) -> str:
    for pattern in _UNDEFINED:
        m = pattern.search(message)
        if m:
            return m.group(1)
    return message


def _task_environment() -> jinja2.Environment:
    env = sandbox_environment()  # curate's sandbox: unsafe attributes are errors, not empty strings
    env.undefined = jinja2.StrictUndefined
    env.globals.pop("strftime_now", None)  # a clock would make renderings differ between runs
    env.filters["regex_sub"] = _regex_sub
    return env


def _regex_sub(text, pattern: str, repl: str = "", count: int = 0) -> str:
    """`{{ answer | regex_sub('<<[^<>]*>>', '') }}`: re.sub on a string."""
    return re.sub(pattern, repl, str(text), count=count)


def load_library(path: Path, name: str, where: str) -> Library:
    """Read, validate and compile a library file; every error names the file (and phrasing, part, line)."""
    if not path.is_file():
        raise CurateError(f"no task library file {str(path)!r}", where)
    data = path.read_bytes()
    return _compile(data, str(path), name, where)


@lru_cache(maxsize=32)
def _cached(data: bytes, path: str, name: str) -> Library:
    return _build(data, path, name)


def _compile(data: bytes, path: str, name: str, where: str) -> Library:
    try:
        return _cached(data, path, name)
    except _LibraryProblem as e:
        raise CurateError(f"task library {name}: {e}", where) from None


class _LibraryProblem(Exception):
    pass


def _build(data: bytes, path: str, name: str) -> Library:
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise _LibraryProblem(f"is not valid UTF-8 YAML: {e}") from None
    if not isinstance(raw, dict):
        raise _LibraryProblem("must be a mapping with `task` and `phrasings`")
    try:
        spec = LibrarySpec.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or '(top)'}: {err['msg']}" for err in e.errors())
        raise _LibraryProblem(problems) from None
    env = _task_environment()
    lib = Library(spec, name, hashlib.sha256(data).hexdigest())
    prelude = spec.macros.rstrip("\n") + "\n" if spec.macros.strip() else ""
    offset = prelude.count("\n")
    for p in spec.phrasings:
        templates, uses = {}, set()
        for part in PARTS:
            source = getattr(p, part)
            if source is None:
                continue
            text = prelude + source
            try:
                templates[part] = env.from_string(text)
                uses |= jinja_meta.find_undeclared_variables(env.parse(text))
            except jinja2.TemplateSyntaxError as e:
                line = (e.lineno or 0) - offset
                at = f"macros line {e.lineno}" if line <= 0 else f"line {line}"
                raise _LibraryProblem(f"phrasing {p.id!r} {part} does not parse ({at}): {e.message}") from None
        lib.phrasings[p.id] = Phrasing(
            p.id, templates,
            p.shot_separator if p.shot_separator is not None else spec.shot_separator,
            p.answer_separator if p.answer_separator is not None else spec.answer_separator,
            "shots" in uses,
        )
    return lib
