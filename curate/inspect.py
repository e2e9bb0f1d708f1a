"""`curate inspect`: read a run folder's outputs and show rows with their scores and reasons."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from curate.errors import CurateError, did_you_mean
from curate.io import read_jsonl


def load_manifest(run_dir: Path) -> dict:
    from curate.io import FORMAT_VERSION

    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise CurateError("not a curate run folder: manifest.json is missing", str(run_dir))
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise CurateError(f"written by a newer curate (format {manifest['format_version']} > {FORMAT_VERSION}); upgrade curate",
                          str(path))
    return manifest


HIDDEN = ("id", "source", "messages", "meta", "text", "assistant_spans", "raw")


def select_rows(run_dir: Path, dropped: bool, step=None, reason=None, source=None, row_id=None) -> list[dict]:
    manifest = load_manifest(run_dir)
    if dropped:
        steps = ["load"] + [s["label"] for s in manifest["steps"]]
        if step and step not in steps:
            raise CurateError(f"no step {step!r} in this run{did_you_mean(step, steps)}; steps: {steps}", "--step")
        rows = read_jsonl(Path(run_dir) / "rejects.jsonl")
        rows = [r for r in rows if (not step or r["step"] == step) and (not reason or reason.lower() in r["reason"].lower())]
        key = lambda r: r["row"]  # noqa: E731 - the row sits inside the ledger entry
    else:
        data = Path(run_dir) / "data.jsonl"
        if not data.is_file():
            raise CurateError("this run wrote no data.jsonl (add jsonl to outputs.formats)", str(run_dir))
        rows = read_jsonl(data)
        key = lambda r: r  # noqa: E731
    return [r for r in rows if (not source or key(r).get("source") == source) and (not row_id or key(r).get("id") == row_id)]


def show_rows(console: Console, rows: list[dict], n: int, as_json: bool) -> None:
    console.print(f"{len(rows)} rows match; showing {min(n, len(rows))}")
    for r in rows[:n]:
        if as_json:
            console.print_json(json.dumps(r, ensure_ascii=False))
            continue
        row = r.get("row", r)
        head = f"[bold]{row.get('id', r.get('where', '?'))}[/] source={row.get('source')}"
        why = ""
        if "step" in r:
            why = f"[red]dropped by {r['step']}[/]: {escape(r['reason'])}"
            if r.get("duplicate_of"):
                why += f" (duplicate of {r['duplicate_of']})"
            if r.get("detail"):
                why += "\n[dim]" + escape(", ".join(f"{k}={_fmt(v)}" for k, v in r["detail"].items())) + "[/]"
            why += "\n"
        scores = {k: v for k, v in row.items()
                  if k not in HIDDEN and not (k.endswith("_why") and v is None)}
        body = why + ("\n".join(f"[cyan]{m['role']}[/]: {_clip(m['content'])}" for m in row.get("messages", []))
                      or _clip(row.get("raw", "")))
        if scores:
            body += "\n[dim]" + escape(", ".join(f"{k}={_fmt(v)}" for k, v in scores.items())) + "[/]"
        console.print(Panel(body, title=head, title_align="left"))


def _clip(text: str, limit: int = 400) -> str:
    text = text if len(text) <= limit else text[:limit] + " ..."
    return escape(text)


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
