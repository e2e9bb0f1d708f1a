"""One registry of steps: a step is a class in one file, registered by its recipe name."""

from __future__ import annotations

import importlib
import pkgutil

from curate.errors import CurateError, did_you_mean

_STEPS: dict[str, type] = {}
_loaded = False


def register(cls):
    """Class decorator: `@register` on a Step subclass makes `cls.name` usable in recipes."""
    if cls.name in _STEPS and _STEPS[cls.name] is not cls:
        raise RuntimeError(f"two steps are registered as {cls.name!r}")
    _STEPS[cls.name] = cls
    return cls


def _load_all() -> None:
    # Importing every module under curate.steps registers them; heavy libraries are imported lazily
    # inside the steps, so this stays cheap.
    global _loaded
    if _loaded:
        return
    import curate.steps as pkg

    for mod in pkgutil.walk_packages(pkg.__path__, prefix="curate.steps."):
        importlib.import_module(mod.name)
    _loaded = True


def step_names() -> list[str]:
    _load_all()
    return sorted(_STEPS)


def get_step(name: str, where: str | None = None) -> type:
    _load_all()
    if name not in _STEPS:
        raise CurateError(f"unknown step {name!r}{did_you_mean(name, _STEPS)}", where)
    return _STEPS[name]
