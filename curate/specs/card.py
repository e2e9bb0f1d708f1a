"""The recipe's `card:` section: how the data card (and the HTML report) of a run is written.

Everything here is optional. Metadata the run can measure (license, size, sources, statistics) is
never taken from here; what only a person can say (why the set exists, what it is for, who looks
after it) is, and a section left empty is marked in the card as "[More Information Needed]" rather
than invented.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from curate.strict import StrictModel


class CardSpec(StrictModel):
    write: bool = False  # write the data card at the end of `curate run`
    dir: str | None = None  # default data_cards/<name> (relative to the current directory)
    report: bool = False  # also write report.html into the run folder at the end of `curate run`

    # -- Hub metadata ------------------------------------------------------------------------------
    pretty_name: str | None = None  # default: the recipe name
    repo_id: str | None = None  # the Hub id it is published under (org/name); `curate publish --repo` overrides
    language: list[str] | None = None  # ISO 639 codes; default: measured (score.language), else [en]
    task_categories: list[str] = Field(default_factory=lambda: ["text-generation"])
    task_ids: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)  # "curate" is always added

    # -- what only a person can write (Datasheets for Datasets) -------------------------------------
    motivation: str | None = None  # why the set was made, by whom, for what task
    intended_uses: str | None = None  # what it is for
    out_of_scope_uses: str | None = None  # what it must not be used for
    sensitive_content: str | None = None  # personal, offensive or confidential content, and how it was handled
    maintainers: str | None = None  # who maintains it
    contact: str | None = None  # how to reach them
    citation: str | None = None  # BibTeX, pasted as is

    # -- statistics --------------------------------------------------------------------------------
    examples: int = Field(default=3, ge=0, le=50)  # examples shown per duplicate / contamination step

    @field_validator("language")
    @classmethod
    def _iso_codes(cls, v):
        for code in v or []:
            if not re.fullmatch(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*", code):
                raise ValueError(f"not an ISO 639 language code: {code!r} (e.g. en, de, zh)")
        return v

    @field_validator("repo_id")
    @classmethod
    def _repo_id(cls, v):
        if v is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", v):
            raise ValueError(f"a Hub id is owner/name, got {v!r}")
        return v
