"""The card's recipe section: the resolved recipe as YAML, local paths by base name (scrub_paths, also used by publish)."""

from __future__ import annotations

import os

import yaml

from curate.card import stats as S
from curate.card.markdown import fence


PATH_KEYS = {"path", "jinja_file"}
MAYBE_PATH_KEYS = {"tokenizer", "dir", "run", "recipe"}


def scrub_paths(obj, key: str | None = None):
    """Local paths as base names (source paths always; tokenizers and folders when absolute or relative)."""
    if isinstance(obj, dict):
        return {k: scrub_paths(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrub_paths(v, key) for v in obj]
    if isinstance(obj, str) and key in PATH_KEYS:
        return S.display_path(obj)
    if isinstance(obj, str) and key in MAYBE_PATH_KEYS and (os.path.isabs(obj) or obj.startswith(("./", "../", "~"))):
        return S.display_path(obj)
    return obj


def _drop_nulls(obj):
    if isinstance(obj, dict):
        return {k: _drop_nulls(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_nulls(v) for v in obj]
    return obj


def recipe_yaml(manifest: dict) -> str:
    recipe = _drop_nulls(scrub_paths(manifest.get("recipe") or {}))
    if isinstance(recipe.get("description"), str):
        recipe["description"] = " ".join(recipe["description"].split())
    return yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True, width=100)


def recipe_section(c) -> str:
    return "\n".join([
        "## The recipe", "",
        "As resolved by curate (defaults filled in, empty values left out, local paths by base name):", "",
        fence(recipe_yaml(c["run"].manifest), "yaml"),
    ])
