"""The recipe's `sources:` entries (`Source`): where rows come from. Also the source of an evaluation
(curate.specs.evals) and of a text set (curate.textsets), so it lives here, below both."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import Field, model_validator

from curate.io import arrow_batches
from curate.strict import StrictModel


class Source(StrictModel):
    """One input: a hub dataset or local files, read with `datasets`, adapted to the chat schema."""

    hub: str | None = None  # Hugging Face hub id, e.g. GAIR/lima
    config: str | None = None  # hub config (subset) name
    split: str = "train"
    revision: str | None = None
    path: str | list[str] | None = None  # local file(s) or glob(s); wins over `hub` when both are set
    file_type: Literal["json", "jsonl", "csv", "parquet"] | None = None  # default: from the extension
    csv_columns: list[str] | None = None  # the names of a headerless csv's columns (MMLU)
    format: str = "auto"  # adapter name; auto picks by the columns present
    options: dict[str, Any] = Field(default_factory=dict)  # the adapter's own options
    license: str | None = None  # SPDX-ish id; the data card takes the most restrictive
    kind: Literal["text", "code"] = "text"  # code: `clean` keeps its assistant turns verbatim (but trailing spaces)
    on_error: Literal["fail", "skip"] = "fail"  # malformed lines or rows: stop, or skip and record
    limit: int | None = Field(default=None, ge=1)  # read only the first N rows
    # Python API only (Pipeline.run(data)): rows in memory, a datasets.Dataset, a pyarrow Table or a list of
    # dicts. Not part of a recipe file; the manifest records a hash of its content instead.
    data: Any = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _has_input(self):
        if not self.hub and not self.path and self.data is None:
            raise ValueError("a source needs `path` (local files) or `hub` (a hub dataset id)")
        return self

    def data_fingerprint(self) -> str:
        """A hash of the in-memory rows' content (their Arrow IPC bytes)."""
        import pyarrow as pa

        digest = hashlib.sha256()
        for table in arrow_batches(self.data):
            table = table.replace_schema_metadata(None).combine_chunks()  # the rows, not how they were built
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            digest.update(sink.getvalue())
        return digest.hexdigest()
