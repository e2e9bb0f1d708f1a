"""What `curate validate` and every run check before reading a row: each step reads only columns that the
loaded rows or an earlier step provide (from what each step declares in `reads()` and `adds()`)."""

from __future__ import annotations

from curate.engine.worker import StepSpec
from curate.errors import CurateError
from curate.steps.base import missing_columns
from curate.steps.registry import get_step


def column_problems(recipe) -> list[str]:
    """Steps that read a column no earlier step adds (a filter on a score nothing computes, a typo): found
    from what each step declares, before any row is read."""
    from curate.engine.store import BASE_SCHEMA, INTERNAL

    available = [f.name for f in BASE_SCHEMA if f.name not in INTERNAL]
    problems = []
    for i, (label, name, raw) in enumerate(recipe.step_entries()):
        cls = get_step(name)
        step = StepSpec(i, name, cls.Params.model_validate(raw).model_dump_json(), label, f"steps[{i}].{name}",
                        0, recipe.base_dir).build()
        for where, column, hint in missing_columns(available, step.reads(), f"steps[{i}].{name}"):
            problems.append(f"{where}: no step before this one adds the column {column!r}{hint}; "
                            f"columns by then: {', '.join(available)}")
        available += [c for c in step.adds() if c not in available]
    return problems


def check_columns(recipe) -> None:
    problems = column_problems(recipe)
    if problems:
        raise CurateError("\n".join(problems))
