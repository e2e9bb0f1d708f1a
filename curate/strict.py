"""The base of every model a user writes (recipe sections, step params, specs): a key the model does not
know is an error, so a typo in a recipe fails validation instead of being silently ignored; and the one
way their errors are written (`format_errors`: the field path, the bad value, did-you-mean for a key)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from curate.errors import did_you_mean


class StrictModel(BaseModel):
    """Unknown keys are errors. A subclass's own `model_config` adds to this one (pydantic merges them)."""

    model_config = ConfigDict(extra="forbid")


def format_errors(err: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """A pydantic error as lines `field.path: what is wrong`, unknown keys with a did-you-mean."""
    lines = []
    for e in err.errors():
        loc = _loc(prefix, e["loc"])
        if e["type"] == "extra_forbidden":
            key = str(e["loc"][-1])
            known = _known_keys(model, e["loc"][:-1])
            lines.append(f"{loc}: unknown key{did_you_mean(key, known)}")
        elif e["type"] == "missing":
            lines.append(f"{loc}: required field is missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"{loc}: {msg} (got {e['input']!r})" if "input" in e and not isinstance(e["input"], dict) else f"{loc}: {msg}")
    return "\n".join(lines)


def _loc(prefix: str, loc: tuple) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _known_keys(model: type[BaseModel], path: tuple) -> list[str]:
    """Field names of the model at `path` inside `model`, for did-you-mean on unknown keys."""
    current: Any = model
    for part in path:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:  # inside a dict[str, Model]: the key is a user name, keep the model
            continue
        current = _model_of(field.annotation)
    fields = getattr(current, "model_fields", {}) or {}
    return [f.alias or n for n, f in fields.items()]


def _model_of(annotation) -> Any:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        m = _model_of(arg)
        if m is not None:
            return m
    return None
