"""Markdown for the card: table cells, code spans, prose, fences, the marks of what only a person can write, any JSON result."""

from __future__ import annotations

import json

from curate.numbers import fmt

NEEDED = "[More Information Needed]"


def cell(value, limit: int | None = None) -> str:
    """A value inside a markdown table cell: one line, pipes and HTML escaped."""
    text = fmt(value) if not isinstance(value, str) else value
    text = " ".join(text.split())
    if limit and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def code(value) -> str:
    """`value` as an inline code span, whatever it holds: code spans never render HTML, a backtick inside
    gets a longer fence, pipes are escaped for tables and line breaks become spaces."""
    text = " ".join(str(value).split()).replace("|", "\\|")
    ticks = "`"
    while ticks in text:
        ticks += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def prose(value) -> str:
    """Text from the recipe put into the card as prose: markdown stays, HTML is escaped."""
    return str(value).strip().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def table(header: list[str], rows: list[list], align: list[str] | None = None) -> str:
    align = align or ["l"] * len(header)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(c if isinstance(c, str) else cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def needed(what: str, field: str | None = None) -> str:
    how = f"; set `card.{field}` in the recipe" if field else ""
    return f"{NEEDED} _(only a person can write this: {what}{how})_"


def person(value: str | None, what: str, field: str) -> str:
    return prose(value) if value and value.strip() else needed(what, field)


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}%" if b else "–"


def fence(text: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def render_results(obj, depth: int = 0) -> str:
    """Any JSON result as markdown: scalars as a list, lists of flat objects as tables, the rest as JSON."""
    if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        keys = list(dict.fromkeys(k for x in obj for k in x))
        return table([cell(k) for k in keys], [[cell(x.get(k)) if not isinstance(x.get(k), (dict, list)) else
                                                cell(json.dumps(x.get(k), ensure_ascii=False), 80) for k in keys] for x in obj])
    if isinstance(obj, dict):
        scalars = [f"- **{cell(k)}:** {cell(v)}" for k, v in obj.items() if not isinstance(v, (dict, list))]
        nested = []
        for k, v in obj.items():
            if isinstance(v, (dict, list)):
                if depth >= 2:
                    nested.append(f"- **{cell(k)}:** {code(cell(json.dumps(v, ensure_ascii=False), 200))}")
                elif isinstance(v, list) and not any(isinstance(x, dict) for x in v):
                    nested.append(f"- **{cell(k)}:** " + ", ".join(cell(x) for x in v))
                else:
                    nested.append(f"**{cell(k)}**\n\n" + render_results(v, depth + 1))
        return "\n".join(scalars) + ("\n\n" if scalars and nested else "") + "\n\n".join(nested)
    return fence(json.dumps(obj, ensure_ascii=False, indent=2), "json")
