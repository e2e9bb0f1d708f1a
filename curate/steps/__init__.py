"""Steps, one class per file, in four roles (see curate.steps.base).

From Python, every registered step is also a factory here: `curate.steps.Filter(rules=["response_words >= 3"])`
makes the recipe entry `{filter: {rules: [...]}}`, its parameters checked as a recipe's would be.
`curate.steps.names()` lists them with their recipe names.
"""

from __future__ import annotations

# Python names where the class name is not the one a reader expects (the class names are internal).
PYTHON_NAMES = {
    "filter.threshold": "Filter", "filter.pattern": "PatternFilter", "select.threshold": "ThresholdSelect",
    "select.target": "TargetSelect", "task.apply": "Task", "dedup.exact": "ExactDedup", "dedup.minhash": "MinHashDedup",
    "dedup.semantic": "SemanticDedup", "select.random": "RandomSelect",
}


class StepConfig:
    """One step of a pipeline: its recipe name and parameters (kept as given, checked on creation)."""

    def __init__(self, name: str, params: dict):
        from pydantic import ValidationError

        from curate.errors import CurateError
        from curate.strict import format_errors
        from curate.steps.registry import get_step

        cls = get_step(name)
        try:
            cls.Params.model_validate(params)
        except ValidationError as e:
            raise CurateError(format_errors(e, cls.Params, prefix=name), "steps") from None
        self.name, self.params = name, params

    def to_recipe(self) -> dict:
        return {self.name: dict(self.params)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"steps.{python_name(self.name)}({args})"


def python_name(name: str) -> str:
    from curate.steps.registry import get_step

    return PYTHON_NAMES.get(name) or get_step(name).__name__


def names() -> dict[str, str]:
    """Python name -> recipe name, for every step."""
    from curate.steps.registry import step_names

    return {python_name(n): n for n in step_names()}


def __getattr__(attr: str):
    if not attr[:1].isupper():
        raise AttributeError(attr)
    known = names()
    if attr not in known:
        from curate.errors import did_you_mean

        raise AttributeError(f"curate.steps has no step {attr!r}{did_you_mean(attr, known)}; steps: {', '.join(sorted(known))}")
    name = known[attr]

    def factory(**params) -> StepConfig:
        return StepConfig(name, params)

    factory.__name__ = attr
    factory.__doc__ = f"The `{name}` step: {attr}(**params) -> a pipeline step (see `curate steps --markdown`)."
    return factory


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(names()))
