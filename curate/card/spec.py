"""The recipe's `card:` section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CardSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    write: bool = False  # write the data card at the end of `curate run`
    dir: str | None = None  # default data_cards/<name>
