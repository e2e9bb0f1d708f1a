"""The fitted mixing law in a trained grid's results.md: the data card's renderer (curate.card.fit) under a heading."""

from __future__ import annotations


def fit_markdown(doc: dict) -> list[str]:
    from curate.card.fit import fit_markdown as body

    return ["", "## Fitted mixing law", "", *body(doc).split("\n"), ""]
