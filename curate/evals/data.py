"""Evaluation rows: read a task's source through curate's loaders, take the seeded sample, put prompts in a
chat template."""

from __future__ import annotations

import json
import random

from curate.errors import CurateError
from curate.specs.evals import EvalTask

PLACEHOLDER = "\u2063CURATE-ANSWER\u2063"


def load_task_rows(name: str, task: EvalTask, seed: int, heldout: dict[str, list[dict]] | None = None) -> list[dict]:
    """The task's rows (canonical rows with `meta` as a dict): all, or a seeded sample of `task.n`.

    The sample depends on the seed and the task name only, so every model sees the same rows. A task with
    `heldout: <component>` takes the rows that mix component held out (`heldout`: component -> rows)."""
    if task.heldout is not None:
        if not heldout or task.heldout not in heldout:
            have = f"; the grid holds out rows of {sorted(heldout)}" if heldout else ""
            raise CurateError(f"no held-out rows of mix component {task.heldout!r}: only `curate ablate --train` on a mix "
                              f"with `mix.components.{task.heldout}.holdout` has them{have}", f"evals.tasks.{name}.heldout")
        rows = heldout[task.heldout]
    else:
        from curate.sources.load import load_source

        if task.source is None:
            raise CurateError(f"a {task.kind} evaluation has no rows of curate's own", f"evals.tasks.{name}")
        try:
            rows = load_source(name, task.source.to_source()).rows
        except CurateError as e:
            raise CurateError(str(e), f"evals.tasks.{name}") from None
    if task.n is not None and task.n < len(rows):
        picked = sorted(random.Random(f"{seed}:{name}").sample(range(len(rows)), task.n))
        rows = [rows[i] for i in picked]
    out = []
    for row in rows:
        row = dict(row)
        if isinstance(row.get("meta"), str):
            row["meta"] = json.loads(row["meta"])
        out.append(row)
    _check(name, task, out)
    return out


def _check(name: str, task: EvalTask, rows: list[dict]) -> None:
    where = f"evals.tasks.{name}"
    if not rows:
        raise CurateError("the source gave no rows", where)
    meta = rows[0]["meta"]
    if task.kind == "multiple_choice" and ("choices" not in meta or "answer_index" not in meta):
        raise CurateError("multiple-choice rows need choices and an answer key: set `source.format: multiple_choice`", where)
    if task.kind == "gsm8k" and "final_answer" not in meta:
        raise CurateError("gsm8k rows need a final answer (`#### N` at the end of the answer): set `source.format: qa`", where)
    if task.kind in ("generation", "loss") and not any(m["role"] == "assistant" for m in rows[0]["messages"]):
        raise CurateError(f"{task.kind} rows need an assistant turn (the reference answer)", where)


class PromptFormat:
    """How questions are put to a model: its tokenizer's chat template (`model`) or a curate format.

    `render(messages)` -> (text, assistant spans), as the recipe's template renders training rows;
    `prompt(messages)` -> the text up to where the assistant's answer starts (the generation prompt).
    """

    def __init__(self, template: str, tokenizer):
        from curate.templates.render import Templater
        from curate.templates.spec import TemplateSpec

        self.note = None
        chat = getattr(tokenizer, "chat_template", None) if template == "model" else None
        if isinstance(chat, dict):
            chat = chat.get("default")
        if template == "model" and chat:
            spec = TemplateSpec(jinja=chat, bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or "",
                                add_bos=True, add_eos=True)
            self.name = "model chat template"
        else:
            if template == "model":
                self.note = "the tokenizer has no chat template: ChatML was used"
            spec = TemplateSpec(format="chatml" if template == "model" else template)
            self.name = spec.format
        self.templater = Templater(spec, where="evals.template")

    def render(self, messages: list[dict]) -> tuple[str, list]:
        return self.templater.render(messages)

    def prompt(self, messages: list[dict]) -> str:
        """Everything before the answer to `messages` (which end with the user's turn)."""
        text, spans = self.templater.render(list(messages) + [{"role": "assistant", "content": PLACEHOLDER}])
        return text[: spans[-1][0]]


def prompt_messages(row: dict) -> list[dict]:
    """The messages before the row's last assistant turn."""
    msgs = [dict(m) for m in row["messages"]]
    last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=len(msgs))
    return msgs[:last]


def reference(row: dict) -> str:
    """The row's last assistant turn."""
    return next((m["content"] for m in reversed(row["messages"]) if m["role"] == "assistant"), "")
