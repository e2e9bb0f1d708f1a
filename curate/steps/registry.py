"""One registry of steps: a step is a class in one file, registered under that file's path.

A step's name is its module under curate/steps (`steps/score/ifd.py` is `score.ifd`); `register` refuses any
other, so the name tells where the code is. A step may also keep older names as `aliases` (`clean` for
`clean.text`): a recipe may write either, `get_step` resolves both, and a run records the name as the recipe
wrote it (so an existing recipe's outputs do not change).
"""

from __future__ import annotations

import importlib
import pkgutil

from curate.errors import CurateError, did_you_mean

PACKAGE = "curate.steps"
_STEPS: dict[str, type] = {}
_ALIASES: dict[str, str] = {}  # alias -> name
_loaded = False


def register(cls):
    """Class decorator: `@register` on a Step subclass makes `cls.name` (and its `aliases`) usable in recipes."""
    module = cls.__module__
    if module.startswith(PACKAGE + ".") and cls.name != module.removeprefix(PACKAGE + "."):
        raise RuntimeError(f"step {cls.__name__} in {module} is registered as {cls.name!r}: a step's name is its "
                           f"module path under curate/steps ({module.removeprefix(PACKAGE + '.')!r}); keep an older "
                           "name in `aliases`")
    for name in (cls.name, *cls.aliases):
        taken = _STEPS.get(name) or _STEPS.get(_ALIASES.get(name, ""))
        if taken is not None and taken is not cls:
            raise RuntimeError(f"two steps are registered as {name!r}: {taken.__module__} and {module}")
    _STEPS[cls.name] = cls
    _ALIASES.update({alias: cls.name for alias in cls.aliases})
    return cls


def _load_all() -> None:
    # Importing every module under curate.steps registers them; heavy libraries are imported lazily
    # inside the steps, so this stays cheap.
    global _loaded
    if _loaded:
        return
    import curate.steps as pkg

    for mod in pkgutil.walk_packages(pkg.__path__, prefix=PACKAGE + "."):
        importlib.import_module(mod.name)
    _loaded = True


def step_names() -> list[str]:
    """Every step's name (aliases left out)."""
    _load_all()
    return sorted(_STEPS)


def aliases() -> dict[str, str]:
    """alias -> the step's name."""
    _load_all()
    return dict(sorted(_ALIASES.items()))


def canonical_name(name: str) -> str:
    """The step's name for `name` (itself, or what the alias stands for); an unknown name is returned as it is."""
    _load_all()
    return _ALIASES.get(name, name)


def get_step(name: str, where: str | None = None) -> type:
    _load_all()
    name = _ALIASES.get(name, name)
    if name not in _STEPS:
        raise CurateError(f"unknown step {name!r}{did_you_mean(name, [*_STEPS, *_ALIASES])}", where)
    return _STEPS[name]
