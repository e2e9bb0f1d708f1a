"""Small builders shared by the tests: canonical datasets from plain pairs, and a step context."""

from __future__ import annotations

from datasets import Dataset

from curate.rows import make_row
from curate.steps.base import StepContext


def pairs_dataset(pairs, source="test", extra_columns: dict | None = None) -> Dataset:
    """A canonical Dataset from (prompt, response) pairs or full message lists."""
    rows = []
    for i, p in enumerate(pairs):
        if isinstance(p, tuple):
            messages = [{"role": "user", "content": p[0]}, {"role": "assistant", "content": p[1]}]
        else:
            messages = p
        rows.append(make_row(source if isinstance(source, str) else source[i], messages, {"row": i}))
    ds = Dataset.from_list(rows)
    for name, values in (extra_columns or {}).items():
        ds = ds.add_column(name, values)
    return ds


def context(label="step", seed=0, recipe_dir=".") -> StepContext:
    return StepContext(label=label, where=f"steps[0].{label}", seed=seed, recipe_dir=recipe_dir)


def build(step_cls, ctx_label=None, seed=0, **params):
    """Instantiate a step the way the pipeline does: validated params + context."""
    return step_cls(step_cls.Params(**params), context(ctx_label or step_cls.name, seed))


def send_json(handler, obj, status: int = 200) -> None:
    """Reply from a test HTTP server (a BaseHTTPRequestHandler) with `obj` as JSON."""
    import json

    data = json.dumps(obj).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def apply_step(step, rows) -> Dataset:
    """`step` on `rows` as the engine runs it (curate.steps.base.Step.on_table): the rows it keeps, with
    the columns it set, as a Dataset."""
    table, _ = step.on_table(rows)
    return Dataset(table)
