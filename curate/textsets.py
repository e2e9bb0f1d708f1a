"""Text sets named inside a step (eval sets for `decontaminate`, targets for `select.target`).

A text set is a source spec (`curate.specs.source.Source`: hub id or files, format, options, limit, ...)
plus which text of each of its rows to use. Prompt-only files (the eval prompt sets, which have no
answers) name the field that holds the text with `field:`. Files are read by the same loader as the
recipe's sources, so every format and error message is the same.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from curate.errors import CurateError
from curate.specs.source import Source
from curate.rows import TEXT_KEYS, text_of
from curate.sources.load import is_url


class TextSet(Source):
    """A source spec, plus: `name` (how reports name it; default the file's stem or the hub id),
    `key` (the text of each row: prompt, response, conversation, first_user; default `auto`: the question
    of a multiple-choice or QA row, else the prompt) and `field` (read this field of each record as the text
    instead: for files that hold only prompts)."""

    name: str | None = None
    key: Literal[("auto", *TEXT_KEYS)] = "auto"
    field: str | None = Field(None, min_length=1)

    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.path:
            first = self.path[0] if isinstance(self.path, list) else self.path
            return Path(first.split("?")[0]).stem
        return self.hub + (f"/{self.config}" if self.config else "") + f"[{self.split}]"


@dataclass
class Texts:
    name: str
    texts: list[str]
    locations: list[str]  # file:line, "file record N" or "hub[split] row N"
    ids: list[str | None]  # the record's own id field when it has one (ARC: "Mercury_7220990")
    answers: list[str | None]  # a multiple-choice row's correct option, a QA row's final answer, else None


def load_texts(spec: TextSet, where: str, recipe_dir: str = ".") -> Texts:
    """Read a text set. Relative paths are tried against the recipe's folder first, then as given."""
    from curate.sources.load import load_source

    src = spec.model_copy()
    if src.path and not is_url(src.path):
        paths = src.path if isinstance(src.path, list) else [src.path]
        fixed = [_resolve(p, recipe_dir) for p in paths]
        src.path = fixed if isinstance(src.path, list) else fixed[0]
    if spec.field:
        # Any record with the field becomes a one-turn row whose prompt (and response) is that text.
        src.format, src.options = "columns", {"prompt": spec.field, "response": spec.field}
    name = spec.display_name()
    source_fields = set(Source.model_fields)
    try:
        loaded = load_source(name, Source(**src.model_dump(include=source_fields)), base_dir=recipe_dir)
    except CurateError as e:
        hint = ""
        if spec.hub and not spec.path:
            hint = f" Without network, point it at a local copy: --set {_set_path(where)}.path=FILE"
        msg = str(e).replace(f"sources.{name}", where)
        raise CurateError(msg + hint) from None
    key = "prompt" if spec.field else spec.key
    texts, locations, ids, answers = [], [], [], []
    import json

    for row in loaded.rows:
        meta = json.loads(row["meta"])
        question = meta.get("question") if key == "auto" else None
        texts.append(question if isinstance(question, str) else text_of(row["messages"], "prompt" if key == "auto" else key))
        locations.append(meta.get("source_row", ""))
        rid = meta.get("id", meta.get("question_id", meta.get("idx")))
        ids.append(None if rid is None else str(rid))
        answer = meta.get("answer_text", meta.get("final_answer"))
        answers.append(str(answer) if answer is not None else None)
    return Texts(name, texts, locations, ids, answers)


def fingerprint(spec: TextSet, recipe_dir: str = ".") -> dict:
    """What the text set's content depends on, for a cache key: the sha256 of each local file (after
    resolving paths and globs), or the hub id / URL as written (its content cannot be hashed offline)."""
    import hashlib

    from curate.sources.files import expand_paths

    out = spec.model_dump(mode="json")
    if spec.path and not is_url(spec.path):
        paths = spec.path if isinstance(spec.path, list) else [spec.path]
        resolved = Source(path=[_resolve(p, recipe_dir) for p in paths])
        try:
            files = expand_paths(resolved, "fingerprint")
        except CurateError:
            return out  # the step reports the missing file when it runs
        out["sha256"] = [hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files]
    return out


def _resolve(path: str, recipe_dir: str) -> str:
    if os.path.isabs(path) or path.startswith(("http://", "https://")):
        return path
    local = os.path.join(recipe_dir, path)
    if glob.has_magic(local) and glob.glob(local) or os.path.exists(local):
        return os.path.relpath(local)
    return path


def _set_path(where: str) -> str:
    # steps[3].decontaminate.eval_sets[0] -> steps.3.decontaminate.eval_sets.0 (the --set spelling)
    return where.replace("[", ".").replace("]", "")
