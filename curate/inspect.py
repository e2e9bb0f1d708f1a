"""`curate inspect`: read a run folder's outputs and show rows with their scores and reasons."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from curate.errors import CurateError, did_you_mean
from curate.io import json_ready, row_for_json
from curate.numbers import fmt
from curate.runfolder import load_manifest, read_rejects, read_rows


HIDDEN = ("id", "source", "messages", "meta", "text", "assistant_spans", "raw")


def select_rows(run_dir: Path, dropped: bool, step=None, reason=None, source=None, row_id=None) -> list[dict]:
    manifest = load_manifest(run_dir)
    if dropped:
        steps = ["load"] + [s["label"] for s in manifest["steps"]]
        if step and step not in steps:
            raise CurateError(f"no step {step!r} in this run{did_you_mean(step, steps)}; steps: {steps}", "--step")
        rows = read_rejects(run_dir)
        rows = [r for r in rows if (not step or r["step"] == step) and (not reason or reason.lower() in r["reason"].lower())]
        key = lambda r: r["row"]  # noqa: E731 - the row sits inside the ledger entry
    else:
        rows = [row_for_json(r) for r in read_rows(run_dir)]
        key = lambda r: r  # noqa: E731
    return [r for r in rows if (not source or key(r).get("source") == source) and (not row_id or key(r).get("id") == row_id)]


def select_changes(run_dir: Path, step=None, source=None, row_id=None) -> list[dict]:
    """What transforms (clean, task) changed in the kept rows: one entry per row and step, with the
    changed turns before and after."""
    from curate.io import read_jsonl

    path = Path(run_dir) / "changes.jsonl"
    if not path.is_file():
        load_manifest(run_dir)  # not a run folder at all: say that
        raise CurateError("this run has no changes.jsonl (no transform step, a mix, or an older curate)", str(run_dir))
    return [c for c in read_jsonl(path) if (not step or c["step"] == step) and (not source or c["source"] == source)
            and (not row_id or c["id"] == row_id)]


def show_changes(console: Console, changes: list[dict], n: int, as_json: bool, notes: Console | None = None) -> None:
    header = f"{len(changes)} changed rows match; showing {min(n, len(changes))}"
    if as_json:
        show_rows(console, changes, n, True, notes)
        return
    console.print(header)
    for c in changes[:n]:
        body = "\n".join(f"[cyan]turn {t['index']} ({_clip(t['role'], 20)}){_what(t['before'], t['after'])}[/]\n"
                         + _line_diff(t["before"], t["after"]) for t in c["turns"])
        console.print(Panel(body or "(turns added or removed)", title=f"[bold]{_clip(c['id'], 80)}[/] changed by "
                            f"{_clip(c['step'], 40)}, source={_clip(str(c['source']), 80)}", title_align="left"))


def _what(before: str, after: str) -> str:
    import unicodedata

    if before.split() == after.split():
        return ": spacing only"
    if unicodedata.normalize("NFC", before).split() == after.split():
        return ": Unicode normalisation (NFC), and spacing"
    return ""


def _line_diff(before: str, after: str, limit: int = 40) -> str:
    """The lines that differ, - before and + after; spaces at a line's end show as · and tabs as →."""
    import difflib

    def shown(line: str) -> str:
        body = line.rstrip(" \t")
        tail = line[len(body):].replace(" ", "·").replace("\t", "→")
        return _clip(body.replace("\t", "→"), 300) + tail

    out = []
    for line in difflib.ndiff(before.split("\n"), after.split("\n")):
        if line[:2] == "- ":
            out.append(f"[red]- {shown(line[2:])}[/]")
        elif line[:2] == "+ ":
            out.append(f"[green]+ {shown(line[2:])}[/]")
    return "\n".join(out[:limit] + ([f"[dim]... {len(out) - limit} more lines[/]"] if len(out) > limit else []))


def show_rows(console: Console, rows: list[dict], n: int, as_json: bool, notes: Console | None = None) -> None:
    """Rows as panels on `console`, or as JSON Lines (one object per line, nothing else) on stdout with the
    count on `notes` (stderr), so that `curate inspect --json ... | jq` reads clean JSON."""
    header = f"{len(rows)} rows match; showing {min(n, len(rows))}"
    if as_json:
        (notes or console).print(header)
        for r in rows[:n]:
            sys.stdout.write(json_line(r) + "\n")
        sys.stdout.flush()
        return
    console.print(header)
    for r in rows[:n]:
        row = r.get("row", r)
        head = f"[bold]{_clip(str(row.get('id', r.get('where', '?'))), 80)}[/] source={_clip(str(row.get('source')), 80)}"
        why = ""
        if "step" in r:
            why = f"[red]dropped by {_clip(r['step'], 80)}[/]: {_clip(r['reason'])}"
            if r.get("duplicate_of"):
                why += f" (duplicate of {_clip(str(r['duplicate_of']), 80)})"
            if r.get("detail"):
                why += "\n[dim]" + _clip(", ".join(f"{k}={fmt(v)}" for k, v in r["detail"].items())) + "[/]"
            why += "\n"
        scores = {k: v for k, v in row.items()
                  if k not in HIDDEN and not (k.endswith("_why") and v is None)}
        body = why + ("\n".join(f"[cyan]{_clip(str(m['role']), 20)}[/]: {_clip(m['content'])}"
                                for m in row.get("messages", [])) or _clip(row.get("raw", "")))
        if scores:
            body += "\n[dim]" + _clip(", ".join(f"{k}={fmt(v)}" for k, v in scores.items()), 2000) + "[/]"
        console.print(Panel(body, title=head, title_align="left"))


# C0 and C1 control characters other than newline and tab: a row's text must not drive the terminal
# (an ESC sequence can clear the screen, rewrite the title or fake other output).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """`text` with control characters shown as escapes (\\x1b) instead of sent to the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def json_line(obj) -> str:
    """One JSON object on one line; C1 controls escaped too (JSON escapes only C0)."""
    text = json.dumps(json_ready(obj), ensure_ascii=False, allow_nan=False, default=str)
    return re.sub(r"[\x7f-\x9f\u2028\u2029]", lambda m: f"\\u{ord(m.group(0)):04x}", text)


def _clip(text: str, limit: int = 400) -> str:
    text = text if len(text) <= limit else text[:limit] + " ..."
    return escape(visible(text))
