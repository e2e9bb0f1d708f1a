"""The step reference, generated from the steps' own docstrings and parameter models, so the README
cannot drift from the code (a test compares them)."""

from __future__ import annotations

import inspect

from pydantic_core import PydanticUndefined

ROLE_TITLES = {"transform": "rewrites text", "score": "adds columns", "filter": "drops rows with a reason",
               "select": "picks a budgeted subset"}


def param_defaults(cls) -> dict[str, str]:
    out = {}
    for name, f in cls.Params.model_fields.items():
        if f.default is PydanticUndefined and f.default_factory is None:
            out[f.alias or name] = "required"
        else:
            value = f.default_factory() if f.default_factory is not None else f.default
            text = repr(value)
            out[f.alias or name] = text if len(text) <= 40 else "(long: see the docs)"
    return out


def steps_markdown() -> str:
    from curate.registry import get_step, step_names

    parts = []
    for name in step_names():
        cls = get_step(name)
        doc = inspect.cleandoc(cls.__doc__ or "")
        params = ", ".join(f"`{k}`={v}" for k, v in param_defaults(cls).items())
        parts.append(f"#### `{name}` ({cls.role}: {ROLE_TITLES[cls.role]})\n\n{doc}\n\nParameters and defaults: {params}\n")
    return "\n".join(parts).rstrip() + "\n"
