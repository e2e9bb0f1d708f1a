"""`task`: rewrite rows of task datasets (ARC, MMLU, GSM8K, QA, ...) into instructions with seeded phrasings."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from curate.errors import CurateError, did_you_mean
from curate.progress import progress
from curate.rows import prompt_text, response_text
from curate.seeds import derive_seed
from curate.steps.base import StepParams, Transform, as_table
from curate.steps.registry import register
from curate.steps.task.library import (
    LETTERS,
    Phrasing,
    RenderError,
    load_library,
    shipped_path,
)


@register
class TaskTemplates(Transform):
    """Rewrite rows into instructions with a library of task phrasings (FLAN-style); never drops a row.

    Each row gets one phrasing of the library, chosen by a hash of the seed and the row id, so the
    assignment is the same in every run with the same seed, whatever the row order, and changes with
    the seed. The row's messages become the phrasing's rendering: an optional system turn, the user
    turn and the assistant turn (each stripped; an empty system is left out); the old turns are
    there for the templates as `prompt` and `response`. The row keeps its id;
    `meta.task_template` records the phrasing id (and `meta.task_shots` the ids of few-shot examples).
    Notes: per-phrasing counts, rows templated and untouched, the library file and its sha256.

    Params:
    - `task`: a shipped library, `curate/templates/tasks/<task>.yaml`: `multiple_choice` (ARC, MMLU:
      lettered options, answer as letter or letter + text), `math` (GSM8K: the worked answer ending
      in the final number), `qa` (generative, or extractive when a row has `context`), `summarise`
      (`text`/`summary`, else prompt/response) or `classify` (`text`, `label`, `options`).
    - `library`: instead of `task`, a library file of your own in the same format (relative to the
      recipe); copy a shipped one to start.
    - `phrasings` (all): the ids of the phrasings to use; rows are spread over these.
    - `variables` ({}): values for the library's variables, e.g. `{answer_style: letter}` for
      multiple_choice (the answer is the letter alone, not letter + text).
    - `shots` (0): few-shot examples per row, drawn (seeded, per row) from the other rows of the
      same source, never the row itself or a copy of it; each is rendered with the row's phrasing.
    - `shots_as` ("inline"): "inline" puts the examples in the user turn before the question,
      each as prompt + answer (FLAN-style); "turns" makes them earlier user/assistant turns. A
      phrasing whose templates use `shots` lays the examples out itself.
    - `sources` (all): only rows of these sources are rewritten; the others pass untouched (a
      recipe that mixes an ARC source with general chat rows).
    - `seed` (the step's seed from the recipe): the seed of the assignment and the shot draws.

    Templates are Jinja2 in curate's sandbox with undefined names as errors. They see the row's meta
    fields (what the source adapter kept: `question`, `choices`, `answer_letter`, `answer_text`,
    `answer`, `final_answer`, ...), the library's variables (a row field of the same name wins),
    `prompt` and `response` (the current texts: everything before the last assistant turn, and that
    turn), `letters` ("A".."Z") and `shots` (the examples' contexts); the last four shadow row
    fields of the same name. A row that lacks a field its phrasing uses is an error naming the
    library file, the phrasing, the field and the row id. Each library file documents the format,
    its fields, variables and phrasing ids at its top (`curate/templates/tasks/`).
    """

    name = "task.apply"
    aliases = ("task",)

    class Params(StepParams):
        task: str | None = None
        library: str | None = None
        phrasings: list[str] | None = None
        variables: dict[str, Any] = Field(default_factory=dict)
        shots: int = Field(default=0, ge=0)
        shots_as: Literal["inline", "turns"] = "inline"
        sources: list[str] | None = None
        seed: int | None = None

        @field_validator("task")
        @classmethod
        def _shipped(cls, v):
            if v is not None:
                shipped_path(v)  # unknown task: a ValueError with did-you-mean
            return v

        @field_validator("phrasings", "sources")
        @classmethod
        def _not_empty(cls, v):
            if v is not None and not v:
                raise ValueError("give at least one, or leave it out for all")
            return v

        @model_validator(mode="after")
        def _one_library(self):
            if (self.task is None) == (self.library is None):
                raise ValueError("give exactly one of `task` (a shipped library) or `library` (a file)")
            if self.task is not None:  # a shipped library can be checked now: phrasing ids, variables
                lib = load_library(shipped_path(self.task), f"tasks/{self.task}.yaml", "task")
                lib.select(self.phrasings)
                lib.variables(self.variables)
            return self

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        p = params
        if p.task is not None:
            self.library = load_library(shipped_path(p.task), f"tasks/{p.task}.yaml", f"{ctx.where}.task")
        else:
            path = Path(p.library)
            path = path if path.is_absolute() else Path(ctx.recipe_dir) / path
            self.library = load_library(path, p.library, f"{ctx.where}.library")
        lib = self.library
        try:
            self.phrasings: list[Phrasing] = lib.select(p.phrasings)
        except ValueError as e:
            raise CurateError(str(e), f"{ctx.where}.phrasings") from None
        try:
            self.variables = lib.variables(p.variables)
        except ValueError as e:
            raise CurateError(str(e), f"{ctx.where}.variables") from None
        self.seed = ctx.seed if p.seed is None else p.seed

    @classmethod
    def cache_token(cls, params, recipe_dir: str = ".") -> str:
        """What the step reads besides its params: the library file's sha256 (for a cache key)."""
        if params.task is not None:
            path = shipped_path(params.task)
        else:
            path = Path(params.library)
            path = path if path.is_absolute() else Path(recipe_dir) / path
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"

    # -- assignment ------------------------------------------------------------------------------

    def phrasing_for(self, row_id: str) -> Phrasing:
        """The phrasing of a row: a hash of (seed, row id), so row order never matters."""
        return self.phrasings[derive_seed(self.seed, "phrasing", row_id, digits=16) % len(self.phrasings)]

    def shot_indices(self, row_id: str, pool: list[int], position: dict[str, int]) -> list[int]:
        """`shots` rows of `pool` (one row per distinct id, sorted by id), never the row's own id."""
        k = self.params.shots
        own = position.get(row_id)
        others = len(pool) - (own is not None)
        rng = np.random.default_rng(derive_seed(self.seed, "shots", row_id, digits=16))
        draws = rng.choice(others, size=k, replace=False)
        return [pool[d + 1 if own is not None and d >= own else d] for d in draws.tolist()]

    # -- the step --------------------------------------------------------------------------------

    scope = "global"  # few-shot examples come from the other rows of a source

    def reads(self) -> dict[str, str]:
        return {"source": "source", "messages": "messages", "meta": "meta"}

    def adds(self) -> list[str]:
        return ["messages", "meta"]

    def transform(self, table: pa.Table) -> dict[str, list]:
        p, lib, where = self.params, self.library, self.ctx.where
        columns = as_table(table).select(["id", "source", "messages", "meta"]).to_pydict()
        ids, sources = columns["id"], columns["source"]
        if p.sources is not None:
            present = sorted(set(sources))
            for s in p.sources:
                if s not in present:
                    raise CurateError(
                        f"no rows of source {s!r} at this step{did_you_mean(s, present)}; sources here: {present}",
                        f"{where}.sources",
                    )
        wanted = set(p.sources) if p.sources is not None else None
        targets = [i for i, s in enumerate(sources) if wanted is None or s in wanted]
        messages_col, meta_col = columns["messages"], columns["meta"]
        metas = {i: _decode(meta_col[i]) for i in targets}
        contexts = {i: self._context(messages_col[i], metas[i]) for i in targets}

        # few-shot pools: per source, one row per distinct id, in id order (independent of row order)
        pools: dict[str, tuple[list[int], dict[str, int]]] = {}
        if p.shots:
            by_source: dict[str, dict[str, int]] = {}
            for i in targets:
                best = by_source.setdefault(sources[i], {})
                if ids[i] not in best or meta_col[i] < meta_col[best[ids[i]]]:
                    best[ids[i]] = i
            for s, best in by_source.items():
                order = sorted(best)
                pools[s] = ([best[r] for r in order], {r: k for k, r in enumerate(order)})
                if len(order) - 1 < p.shots:
                    raise CurateError(
                        f"shots: {p.shots} needs at least {p.shots + 1} distinct rows of source {s!r}; it has {len(order)}",
                        f"{where}.shots",
                    )

        new_messages, new_meta, counts = {}, {}, Counter()
        self._examples: dict[tuple[int, str], dict[str, str]] = {}
        with progress(len(targets), f"{self.ctx.label}: templating") as advance:
            for i in targets:
                phrasing = self.phrasing_for(ids[i])
                shot_rows = self.shot_indices(ids[i], *pools[sources[i]]) if p.shots else []
                new_messages[i] = self._messages(phrasing, i, shot_rows, contexts, ids, sources)
                meta = dict(metas[i], task_template=phrasing.id)
                if p.shots:
                    meta["task_shots"] = [ids[j] for j in shot_rows]
                new_meta[i] = json.dumps(meta, ensure_ascii=False, sort_keys=True)
                counts[phrasing.id] += 1
                advance(1)

        n = len(ids)
        self.ctx.notes.update({
            "task": lib.spec.task,
            "library": lib.name,
            "library_sha256": lib.sha256,
            "rows_templated": len(targets),
            "rows_untouched": n - len(targets),
            "phrasings": {ph.id: counts[ph.id] for ph in self.phrasings},
            **({"shots": p.shots, "shots_as": p.shots_as} if p.shots else {}),
        })
        return {"messages": [new_messages.get(i, m) for i, m in enumerate(messages_col)],
                "meta": [new_meta.get(i, m) for i, m in enumerate(meta_col)]}

    # -- one row ---------------------------------------------------------------------------------

    def _context(self, messages: list[dict], meta: dict) -> dict:
        return {
            **self.variables,
            **meta,
            "letters": LETTERS,
            "prompt": prompt_text(messages),
            "response": response_text(messages),
        }

    def _render(self, phrasing: Phrasing, i: int, context: dict, ids, sources, shot_for: int | None = None) -> dict[str, str]:
        try:
            return self.library.render(phrasing, context)
        except RenderError as e:
            raise self._error(e, i, context, ids, sources, shot_for) from None

    def _messages(self, phrasing: Phrasing, i: int, shot_rows: list[int], contexts, ids, sources) -> list[dict]:
        shots_ctx = [dict(contexts[j], shots=[]) for j in shot_rows]
        parts = self._render(phrasing, i, dict(contexts[i], shots=shots_ctx), ids, sources)
        examples = []
        if shot_rows and not phrasing.lays_out_shots:
            for j, c in zip(shot_rows, shots_ctx):
                key = (j, phrasing.id)  # a row is an example for many rows: render it once per phrasing
                if key not in self._examples:
                    self._examples[key] = self._render(phrasing, j, c, ids, sources, shot_for=i)
                examples.append(self._examples[key])
        out = [{"role": "system", "content": parts["system"]}] if "system" in parts else []
        user = parts["user"]
        if examples and self.params.shots_as == "turns":
            for ex in examples:
                out += [{"role": "user", "content": ex["user"]}, {"role": "assistant", "content": ex["assistant"]}]
        elif examples:
            shown = [ex["user"] + phrasing.answer_separator + ex["assistant"] for ex in examples]
            user = phrasing.shot_separator.join([*shown, user])
        return out + [{"role": "user", "content": user}, {"role": "assistant", "content": parts["assistant"]}]

    def _error(self, e: RenderError, i: int, context: dict, ids, sources, shot_for: int | None) -> CurateError:
        lib = self.library
        row = f"row {ids[i]!r} (source {sources[i]!r}"
        if "source_row" in context:
            row += f", {context['source_row']}"
        row += ")" + (f", a few-shot example for row {ids[shot_for]!r}," if shot_for is not None else "")
        template = f"template {lib.name} phrasing {e.phrasing!r} ({e.part})"
        if e.kind == "missing":
            fields = sorted(k for k in context if k not in ("letters", "shots"))
            expected = f"; the library expects {sorted(lib.spec.fields)}" if lib.spec.fields else ""
            return CurateError(
                f"{template} uses the field {e.missing!r}, which {row} lacks"
                f"{did_you_mean(str(e.missing), fields)}; the row has {fields}{expected}",
                self.ctx.where,
            )
        if e.kind == "sandbox":
            return CurateError(f"{template} tried something the sandbox forbids on {row}: {e.detail}", self.ctx.where)
        return CurateError(f"{template} failed on {row}: {e.detail}", self.ctx.where)


def _decode(meta) -> dict:
    if meta is None or meta == "":
        return {}
    value = json.loads(meta) if isinstance(meta, str) else dict(meta)
    return value if isinstance(value, dict) else {"meta": value}
