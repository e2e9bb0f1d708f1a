"""The base of every model a user writes (recipe sections, step params, specs): a key the model does not
know is an error, so a typo in a recipe fails validation instead of being silently ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors. A subclass's own `model_config` adds to this one (pydantic merges them)."""

    model_config = ConfigDict(extra="forbid")
