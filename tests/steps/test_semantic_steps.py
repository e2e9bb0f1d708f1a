"""dedup.semantic, the selectors over embeddings (diverse, kcenter, cluster_balanced, target) and
decontaminate: their logic on synthetic vectors (no model), then with real MiniLM embeddings and the
real eval sets in ../shared/data."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from curate.errors import CurateError
from curate.steps.dedup.minhash import MinHashDedup
from curate.steps.dedup.semantic import SemanticDedup
from curate.steps.filter.decontaminate import Decontaminate, words
from curate.steps.filter.overlap import OverlapIndex
from curate.steps.registry import get_step
from curate.steps.score.embed import Embed
from curate.steps.select.cluster_balanced import ClusterBalanced
from curate.steps.select.diverse import Diverse
from curate.steps.select.kcenter import KCenter
from curate.steps.select.target import Target, round_robin
from curate.vectors import coverage
from tests.embedding_fixtures import embed_cache, minilm  # noqa: F401 (fixtures)
from tests.helpers import build, context, pairs_dataset


def unit(X):
    X = np.asarray(X, dtype=np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def vec_dataset(X, ok=None, **columns):
    """A canonical dataset whose `embedding` column holds the rows of X (null where ok is False)."""
    X = np.asarray(X, dtype=np.float32)
    ok = np.ones(len(X), bool) if ok is None else np.asarray(ok, bool)
    ds = pairs_dataset([(f"prompt {i}", f"response {i}") for i in range(len(X))], extra_columns=columns)
    values = [x.tolist() if good else None for x, good in zip(X, ok)]
    return ds.add_column("embedding", pa.array(values, type=pa.list_(pa.float32())))


def blobs(sizes, dim=16, spread=0.05, seed=0):
    """Points around len(sizes) random directions; blob j has sizes[j] points."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(len(sizes), dim)))
    X = np.concatenate([centres[j] + spread * rng.normal(size=(n, dim)) for j, n in enumerate(sizes)])
    return unit(X), np.repeat(np.arange(len(sizes)), sizes)


def dropped(decisions):
    return [i for i, d in enumerate(decisions) if d is not None]


def test_steps_are_registered_with_their_roles():
    roles = {"embed": "score", "dedup.semantic": "filter", "decontaminate": "filter", "select.diverse": "select",
             "select.kcenter": "select", "select.cluster_balanced": "select", "select.target": "select"}
    for name, role in roles.items():
        assert get_step(name).role == role


# -- dedup.semantic on synthetic vectors -------------------------------------------------------------


def test_semantic_dedup_drops_near_copies_and_names_the_kept_row():
    rng = np.random.default_rng(1)
    base = unit(rng.normal(size=(6, 32)))
    near = unit(base[[1, 4]] + 0.02 * rng.normal(size=(2, 32)))  # cos ~0.99 with rows 1 and 4
    ds = vec_dataset(np.concatenate([base, near]))
    step = build(SemanticDedup, eps=0.05)
    out = step.decide(ds)
    assert dropped(out) == [6, 7]
    ids = ds["id"]
    assert out[6].duplicate_of == ids[1] and out[7].duplicate_of == ids[4]
    assert out[6].reason == "semantic duplicate (cosine>0.95)"
    assert out[6].detail["similarity"] > 0.95 and out[6].detail["kept_index"] == 1
    assert out[6].detail["group_size"] == 2
    assert step.ctx.notes["duplicates"] == 2 and step.ctx.notes["clusters"] == 1
    assert build(SemanticDedup, eps=0.05).decide(ds) == out  # deterministic


def test_semantic_dedup_keep_policies():
    v = unit(np.ones((3, 8)) + 0.001 * np.arange(24).reshape(3, 8))  # three near-identical vectors
    ds = vec_dataset(v, q=[0.1, 0.9, 0.5])
    assert dropped(build(SemanticDedup).decide(ds)) == [1, 2]
    out = build(SemanticDedup, keep="highest", score_column="q").decide(ds)
    assert dropped(out) == [0, 2] and out[0].detail["kept_index"] == 1
    longest = pairs_dataset([("p", "short"), ("p", "a much longer answer here"), ("p", "mid answer")])
    longest = longest.add_column("embedding", pa.array(v.tolist(), type=pa.list_(pa.float32())))
    assert dropped(build(SemanticDedup, keep="longest").decide(longest)) == [0, 2]
    with pytest.raises(CurateError, match="'nope'"):
        build(SemanticDedup, keep="highest", score_column="nope").decide(ds)


def test_semantic_dedup_does_not_chain():
    # A~B and B~C above the threshold, A and C below it: keep-first keeps A, drops B, keeps C.
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([np.cos(0.25), np.sin(0.25), 0.0])  # 0.25 rad from a: cos 0.969
    c = np.array([np.cos(0.5), np.sin(0.5), 0.0])  # 0.5 rad from a: cos 0.878
    out = build(SemanticDedup, eps=0.05).decide(vec_dataset([a, b, c]))
    assert dropped(out) == [1]


def test_rows_without_vectors_are_never_duplicates():
    v = unit(np.ones((3, 4)))
    out = build(SemanticDedup).decide(vec_dataset(v, ok=[True, False, True]))
    assert dropped(out) == [2]


def test_semantic_dedup_with_clusters_finds_the_same_pairs():
    X, _ = blobs([40, 40, 40, 40], dim=24, spread=0.03, seed=3)
    ds = vec_dataset(X)
    exact = dropped(build(SemanticDedup, eps=0.02, clusters=1).decide(ds))
    step = build(SemanticDedup, eps=0.02, clusters=4)
    assert dropped(step.decide(ds)) == exact and step.ctx.notes["clusters"] == 4


def test_missing_embedding_column_says_add_an_embed_step():
    ds = pairs_dataset([("a", "b"), ("c", "d")])
    for cls, params in ((SemanticDedup, {}), (KCenter, {"rows": 1}), (Diverse, {"rows": 1})):
        step = build(cls, **params)
        with pytest.raises(CurateError, match="add an `embed` step before this one"):
            step.decide(ds) if cls.role == "filter" else step.select(ds)


# -- selectors on synthetic vectors --------------------------------------------------------------------


def mean_cov(step, which):
    return step.ctx.notes["coverage"][which]["mean_distance"]


def max_cov(step, which):
    return step.ctx.notes["coverage"][which]["max_distance"]


def test_kcenter_covers_better_than_random():
    X, _ = blobs([300, 100, 40, 10, 5, 3, 2, 1], seed=2)  # very uneven: random misses the small blobs
    ds = vec_dataset(X)
    step = build(KCenter, seed=5, rows=16)
    chosen = step.select(ds)
    assert len(chosen) == 16 and chosen == sorted(chosen)
    assert max_cov(step, "selected") < max_cov(step, "random")
    assert mean_cov(step, "selected") < mean_cov(step, "random")
    assert step.ctx.notes["selected"] == 16
    assert build(KCenter, seed=5, rows=16).select(ds) == chosen


def test_kcenter_token_budget():
    X, _ = blobs([30, 30], seed=4)
    ds = vec_dataset(X, n_tokens=[10 + i % 7 for i in range(60)])
    chosen = build(KCenter, tokens=100).select(ds)
    assert sum(ds["n_tokens"][i] for i in chosen) <= 100 and len(chosen) >= 6


def test_diverse_respects_tau_and_score_order():
    X, _ = blobs([50, 50, 50], spread=0.02, seed=6)
    scores = np.linspace(0, 1, 150).tolist()
    ds = vec_dataset(X, q=scores)
    step = build(Diverse, rows=3, score="q", tau=0.3)
    chosen = step.select(ds)
    assert len(chosen) == 3
    # the best-scored row of each blob: rows 49, 99, 149
    assert chosen == [49, 99, 149]
    assert step.ctx.notes["rejected_as_similar"] > 0
    sims = X[chosen] @ X[chosen].T
    assert (sims[np.triu_indices(3, 1)] <= 0.7).all()
    assert mean_cov(step, "selected") < mean_cov(step, "random")


def test_diverse_without_score_is_seeded():
    X, _ = blobs([40, 40], seed=7)
    ds = vec_dataset(X)
    a = build(Diverse, seed=1, rows=10, tau=0.0).select(ds)
    assert a == build(Diverse, seed=1, rows=10, tau=0.0).select(ds)
    assert a != build(Diverse, seed=2, rows=10, tau=0.0).select(ds)


def test_tau_too_large_says_how_many_and_why():
    X, _ = blobs([50, 50, 50], spread=0.02, seed=6)
    ds = vec_dataset(X)
    with pytest.raises(CurateError) as e:
        build(Diverse, rows=10, tau=0.5).select(ds)
    msg = str(e.value)
    assert "selected only 3 rows (3 of the 10 rows budgeted)" in msg
    assert "tau=0.5 passed over 147 of the 150 candidate rows" in msg and "on_short: keep" in msg
    step = build(Diverse, rows=10, tau=0.5, on_short="keep")
    assert len(step.select(ds)) == 3 and "selected only 3 rows" in step.ctx.notes["short"]


def test_budget_larger_than_the_pool_is_an_error():
    X, _ = blobs([5, 5])
    ds = vec_dataset(X, ok=[True] * 8 + [False] * 2)
    for cls in (KCenter, Diverse, ClusterBalanced):
        with pytest.raises(CurateError, match=r"budget of 9 rows is larger than the 8 rows available.*2 of the 10 rows"):
            build(cls, rows=9).select(ds)
    with pytest.raises(ValidationError):
        Diverse.Params(rows=5, tokens=10)


def test_rows_without_vectors_are_never_selected():
    X, _ = blobs([10, 10])
    ok = [i % 3 != 0 for i in range(20)]
    ds = vec_dataset(X, ok=ok)
    for cls, params in ((KCenter, {}), (Diverse, {"tau": 0.0}), (ClusterBalanced, {"clusters": 2})):
        chosen = build(cls, rows=13, **params).select(ds)
        assert len(chosen) == 13 and all(ok[i] for i in chosen)


def test_cluster_balanced_draws_from_every_cluster():
    X, labels = blobs([400, 12, 6, 6], spread=0.03, seed=8)
    ds = vec_dataset(X)
    step = build(ClusterBalanced, rows=40, clusters=4, seed=3)
    chosen = step.select(ds)
    counts = np.bincount(labels[chosen], minlength=4)
    assert counts.tolist() == [16, 12, 6, 6]  # equal shares of 10; the small clusters give back what they lack
    assert sorted(c for _, c in step.ctx.notes["per_cluster"]) == [6, 6, 12, 16]
    assert max_cov(step, "selected") < max_cov(step, "random")  # random misses a small cluster
    prop = build(ClusterBalanced, rows=106, clusters=4, allocation="proportional").select(ds)
    assert sorted(np.bincount(labels[prop], minlength=4).tolist()) == [1, 2, 3, 100]  # 1.5 each: a tie


def test_cluster_balanced_within_top_and_weighted():
    X, _ = blobs([30, 30], spread=0.03, seed=9)
    q = np.arange(60, dtype=float)
    ds = vec_dataset(X, q=q.tolist())
    top = build(ClusterBalanced, rows=4, clusters=2, within="top", score="q").select(ds)
    assert top == [28, 29, 58, 59]
    w = np.zeros(60)
    w[[3, 5, 40, 41]] = 1.0  # only these have weight: a weighted draw of 2 per cluster takes exactly them
    ds = vec_dataset(X, w=w.tolist())
    assert build(ClusterBalanced, rows=4, clusters=2, within="weighted", score="w").select(ds) == [3, 5, 40, 41]
    with pytest.raises(ValidationError, match="needs `score`"):
        ClusterBalanced.Params(rows=3, within="top")


def test_round_robin_gives_every_target_its_nearest_rows():
    X, labels = blobs([50, 50, 50], spread=0.05, seed=10)
    T = unit(X[[0, 50]] + 0.01)  # two targets, in blobs 0 and 1
    picked = round_robin(X, T, np.ones(150, int), 10, True)
    assert len(picked) == 10 and len(set(picked)) == 10
    assert sorted(np.bincount(labels[picked], minlength=3).tolist()) == [0, 5, 5]


def test_coverage_helper():
    X = unit(np.eye(4))
    ok = np.ones(4, bool)
    assert coverage(X, ok, [0, 1, 2, 3])["max_distance"] == 0.0
    c = coverage(X, ok, [0])
    assert c["max_distance"] == pytest.approx(1.0) and c["mean_distance"] == pytest.approx(0.75)


# -- decontaminate: n-grams ------------------------------------------------------------------------------


def test_the_overlap_index_matches_items_of_every_length():
    index = OverlapIndex(13, 8, 4)
    long_q = "Which of these is the best example of a physical change when water is heated slowly"  # 17 words
    assert index.add(words(long_q), "long") == "ngram+near"
    assert index.add(words("What gas do plants absorb from the air?"), "middle") == "near"  # 8 words
    assert index.add(words("Define osmosis in biology."), "short") == "whole"  # 4 words
    assert index.add(words("Define osmosis."), "tiny") == "uncheckable"
    rows = [
        words("Q: WHICH of these is the best example of a physical-change when water is heated?"),  # 16 words of it
        words("Tell me: what gas do plants absorb from the air? Thanks"),
        words("which of these is the best example of a chemical change when water is heated slowly"),  # one differs
        words("Define osmosis."),
        words("Define osmosis in biology."),
        words("Our class notes say: define osmosis in biology, then give two examples from the kitchen."),
        words("What gas do plants take from the air?"),  # one word changed in an 8-word item
    ]
    hits = index.find(rows)
    assert hits[0].item == "long" and hits[0].check == "ngram" and len(hits[0].words) == 13
    assert hits[1].item == "middle" and hits[1].words == words("What gas do plants absorb from the air?")
    assert hits[2].item == "long" and hits[2].check == "near" and hits[2].differs == 1
    assert hits[3] is None  # too short to check
    assert hits[4].item == "short" and hits[4].check == "whole"
    assert hits[5] is None  # a short item inside a longer text is a common phrase, not a copy
    assert hits[6].item == "middle" and hits[6].differs == 1


def _arc_validation(shared_data):
    return json.loads((shared_data / "arc_easy_validation.json").read_text())


def test_decontaminate_catches_planted_overlaps_with_real_eval_sets(shared_data, tmp_path):
    arc = _arc_validation(shared_data)
    long_arc = next(r for r in arc if len(words(r["question"])) >= 20)
    gsm = json.loads((shared_data / "gsm8k_train.jsonl").read_text().splitlines()[5])
    vicuna = json.loads((shared_data / "eval_prompts" / "vicuna_test_set.jsonl").read_text().splitlines()[30])
    mmlu_file = sorted((shared_data / "mmlu" / "val").glob("*.csv"))[0]
    import csv

    mmlu_q = next(r[0] for r in csv.reader(mmlu_file.open(encoding="utf-8")) if len(words(r[0])) >= 16)

    def span(text, start, n=13):
        return " ".join(text.split()[start:start + n])

    pool = [
        ("Explain why the sky is blue.", "Because of Rayleigh scattering of sunlight by the air."),  # clean
        ("Answer this: " + span(long_arc["question"], 2).upper(), "I think it is B."),  # ARC in the prompt
        ("Solve a word problem.", "Here is one: " + span(gsm["question"], 0, 15) + " and so on."),  # GSM8K, response
        ("Please help. " + vicuna["text"], "Sure."),  # a whole (short) eval prompt
        ("Quiz time", "Consider: " + mmlu_q),  # MMLU val, in the response
        ("Write a haiku about autumn leaves.", "Red leaves drift and fall."),  # clean
    ]
    ds = pairs_dataset(pool)
    step = build(Decontaminate, eval_sets=[
        {"path": str(shared_data / "arc_easy_validation.json"), "name": "arc_easy_val", "field": "question"},
        {"path": str(shared_data / "gsm8k_train.jsonl"), "field": "question"},
        {"path": str(shared_data / "eval_prompts" / "vicuna_test_set.jsonl"), "field": "text"},
        {"path": str(mmlu_file), "csv_columns": ["question", "A", "B", "C", "D", "answer"], "field": "question",
         "name": "mmlu_val"},
    ])
    out = step.decide(ds)
    assert dropped(out) == [1, 2, 3, 4]
    arc_drop = out[1]
    assert arc_drop.reason == "contaminated: 13-gram shared with arc_easy_val"  # a 13-word span of a longer item
    assert arc_drop.detail["eval_set"] == "arc_easy_val" and arc_drop.detail["eval_id"] == long_arc["id"]
    assert arc_drop.detail["field"] == "prompt" and arc_drop.detail["eval_row"].endswith(
        f"record {arc.index(long_arc) + 1}")
    assert arc_drop.detail["ngram"] == " ".join(words(span(long_arc["question"], 2)))
    assert out[2].detail["eval_set"] == "gsm8k_train" and out[2].detail["field"] == "response"
    assert out[3].detail["eval_set"] == "vicuna_test_set" and out[3].detail["eval_row"].endswith(":31")
    # a location relative to the recipe's folder (here the current one): the same from any working folder
    assert out[4].detail["eval_set"] == "mmlu_val" and out[4].detail["eval_row"].startswith(
        os.path.relpath(mmlu_file).replace(os.sep, "/") + ":")
    notes = step.ctx.notes
    assert notes["eval_sets"]["arc_easy_val"] == len(arc) and notes["dropped_by_check"]["ngram_prompt"] == 2


def test_decontaminate_eval_set_errors(tmp_path):
    ds = pairs_dataset([("a", "b")])
    step = build(Decontaminate, eval_sets=[{"path": "missing/file.jsonl", "field": "text"}])
    with pytest.raises(CurateError, match=r"steps\[0\]\.filter\.decontaminate\.eval_sets\[0\]\.path: no file matches .missing/file.jsonl."):
        step.decide(ds)
    with pytest.raises(ValidationError, match="min_ngram"):
        Decontaminate.Params(eval_sets=[{"path": "x"}], ngram=5, min_ngram=8)
    with pytest.raises(ValidationError):
        Decontaminate.Params(eval_sets=[])


def test_relative_eval_paths_resolve_against_the_recipe(tmp_path):
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "e.jsonl").write_text(json.dumps({"q": "one two three four five six seven eight nine"}) + "\n")
    ds = pairs_dataset([("x", "so: one two three four five six seven eight nine."), ("y", "z")])
    step = Decontaminate(Decontaminate.Params(eval_sets=[{"path": "evals/e.jsonl", "field": "q"}]),
                         context("decontaminate", recipe_dir=str(tmp_path)))
    assert dropped(step.decide(ds)) == [0]


# -- with real embeddings (the packaged all-MiniLM-L6-v2) ---------------------------------------------------

PARAPHRASES = [  # (an instruction, the same request reworded), cosine >= 0.9 with MiniLM
    ("Write a Python function that reverses a string.", "Create a Python function to reverse a given string."),
    ("What is the capital of Australia?", "Which city is Australia's capital?"),
    ("Describe the water cycle.", "Explain how the water cycle works."),
]
DISTINCT = [  # same templates, different requests: must all stay
    "Write a Python function that sorts a list.", "What is the capital of Austria?", "Describe the carbon cycle.",
    "Write a short poem about the ocean.", "Write a short poem about the mountains.", "List five countries in Africa.",
    "List five countries in Europe.", "Give me three tips for saving money.", "Give me three tips for staying healthy.",
    "How do I change a flat tire?", "Summarize the plot of Hamlet.", "Translate 'thank you' into French.",
]


def embedded(ds, cache, key="prompt"):
    step = build(Embed, key=key, cache_dir=cache)
    cols = step.score(ds)
    return ds.add_column("embedding", cols["embedding"]).add_column("embedding_why", cols["embedding_why"])


def test_semantic_dedup_finds_paraphrases_that_minhash_misses(minilm, embed_cache):
    pool = [(p, f"Answer {i}.") for i, p in enumerate(DISTINCT)] + [(a, "A.") for a, _ in PARAPHRASES]
    pool += [(b, "B.") for _, b in PARAPHRASES]  # the rewordings come last: they are the ones dropped
    ds = embedded(pairs_dataset(pool), embed_cache)
    n = len(DISTINCT) + len(PARAPHRASES)
    rewordings = set(range(n, n + len(PARAPHRASES)))
    assert dropped(build(MinHashDedup, key="prompt").decide(ds)) == []
    # even at Jaccard 0.5 MinHash finds none of them (it pairs two different poems instead)
    assert not set(dropped(build(MinHashDedup, key="prompt", threshold=0.5).decide(ds))) & rewordings
    step = build(SemanticDedup, eps=0.1)
    out = step.decide(ds)
    assert dropped(out) == list(range(n, n + len(PARAPHRASES)))
    ids = ds["id"]
    for j in range(len(PARAPHRASES)):
        d = out[n + j]
        assert d.duplicate_of == ids[len(DISTINCT) + j] and d.detail["similarity"] > 0.9


@pytest.fixture
def alpaca_prompts(shared_data):
    rows = json.loads((shared_data / "alpaca_gpt4_en_demo_999.json").read_text())
    return [(r["instruction"], r["output"][:200]) for r in rows[:160]]


def test_selectors_beat_random_on_coverage_with_real_embeddings(alpaca_prompts, minilm, embed_cache):
    """A redundant pool (each of 40 real prompts four times, lightly reworded), as real pools are: a
    random 20 rows repeat prompts, the embedding selectors spread out. k-center also minimises the
    worst case (max distance) on every seed."""
    pool = []
    for prompt, answer in alpaca_prompts[:40]:
        lower = prompt[0].lower() + prompt[1:]
        pool += [(prompt, answer), ("Please " + lower, answer), (prompt + " Thanks!", answer),
                 ("Quick question: " + prompt, answer)]
    ds = embedded(pairs_dataset(pool), embed_cache)
    for seed in (0, 1, 2):
        for cls, params in ((KCenter, {}), (Diverse, {"tau": 0.15}), (ClusterBalanced, {"clusters": 20})):
            step = build(cls, seed=seed, rows=20, **params)
            assert len(step.select(ds)) == 20
            cov = step.ctx.notes["coverage"]
            assert cov["pool_rows_with_vector"] == 160 and cov["random"]["selected_with_vectors"] == 20
            assert cov["selected"]["mean_distance"] < cov["random"]["mean_distance"], (cls.name, seed, cov)
            if cls is KCenter:
                assert cov["selected"]["max_distance"] < cov["random"]["max_distance"], (seed, cov)


def test_target_selects_rows_near_arc_questions(shared_data, alpaca_prompts, minilm, embed_cache):
    arc_val = _arc_validation(shared_data)[:20]
    pool = alpaca_prompts[:100] + [(r["question"], "Answer.") for r in arc_val]
    ds = embedded(pairs_dataset(pool), embed_cache)
    for aggregate in ("round_robin", "max", "mean"):
        step = build(Target, rows=20, cache_dir=embed_cache, aggregate=aggregate, targets=[
            {"path": str(shared_data / "arc_easy_train.json"), "field": "question", "limit": 40}])
        chosen = step.select(ds)
        science = sum(1 for i in chosen if i >= 100)
        # a random 20 of these 120 rows hold ~3 ARC questions; the rest picked are science-like
        # alpaca rows ("Explain what a circuit breaker is.", "two examples of renewable energy")
        assert science >= 10, (aggregate, science)
        notes = step.ctx.notes
        assert notes["targets"]["texts"] == 40
        assert notes["target_similarity"]["selected"] > notes["target_similarity"]["random"]
        assert notes["target_coverage"]["selected"]["mean_distance"] < notes["target_coverage"]["random"]["mean_distance"]


def test_target_inline_texts_and_dimension_check(minilm, embed_cache):
    ds = vec_dataset(unit(np.ones((5, 8))))
    step = build(Target, rows=2, texts=["a science question"], cache_dir=embed_cache)
    with pytest.raises(CurateError, match="384 dimensions and 'embedding' has 8"):
        step.select(ds)
    with pytest.raises(ValidationError, match="give `targets`"):
        Target.Params(rows=2)


def test_decontaminate_embedding_check_catches_a_paraphrased_eval_question(shared_data, minilm, embed_cache, tmp_path):
    arc = _arc_validation(shared_data)
    # 13 words or fewer: with its first word changed no 13-gram (nor the whole text) matches, only the meaning
    q = next(r for r in arc[:200] if r["question"].startswith("Which") and len(words(r["question"])) <= 13)
    pool = [("Describe the water cycle.", "Water evaporates."), (q["question"].replace("Which", "What"), "B"),
            ("How do I change a flat tire?", "Jack up the car.")]
    ds = embedded(pairs_dataset(pool), embed_cache)
    step = build(Decontaminate, embedding_threshold=0.9, cache_dir=embed_cache, eval_sets=[
        {"path": str(shared_data / "arc_easy_validation.json"), "field": "question", "limit": 200}])
    out = step.decide(ds)
    assert dropped(out) == [1]
    assert out[1].reason == "contaminated: embedding similarity >= 0.9 with arc_easy_validation"
    assert out[1].detail["eval_id"] == q["id"] and out[1].detail["similarity"] >= 0.9


# -- a recipe with the embedding steps, end to end ------------------------------------------------------


def test_recipe_with_embedding_steps_end_to_end(tmp_path, minilm, embed_cache):
    from pathlib import Path

    from curate.io import read_jsonl
    from curate.pipeline import run_recipe
    from curate.recipe import load_recipe

    data = Path(__file__).resolve().parents[2] / "recipes" / "data"
    first = json.loads((data / "quickstart_general.jsonl").read_text().splitlines()[0])
    leaked = " ".join(first["output"].split()[3:17])  # 14 words of a row's answer, as an "eval prompt"
    (tmp_path / "evals.jsonl").write_text(json.dumps({"text": leaked}) + "\n")
    (tmp_path / "r.yaml").write_text(f"""
name: emb
seed: 1
sources:
  general: {{path: {data / 'quickstart_general.jsonl'}, limit: 80}}
  science: {{path: {data / 'quickstart_domain.jsonl'}, limit: 40}}
steps:
  - embed: {{key: prompt, cache_dir: {embed_cache}}}
  - dedup.semantic: {{}}
  - decontaminate: {{eval_sets: [{{path: evals.jsonl, field: text}}]}}
  - select.kcenter: {{rows: 30}}
outputs: {{dir: {tmp_path / 'out'}, formats: [jsonl, parquet]}}
cache: {{dir: {tmp_path / 'cache'}}}
""")
    recipe = load_recipe(tmp_path / "r.yaml")
    result = run_recipe(recipe, recipe_dir=str(tmp_path))
    m = result.manifest
    assert m["totals"]["rows_in"] == m["totals"]["rows_out"] + m["totals"]["dropped"] and m["totals"]["rows_out"] == 30
    steps = {s["label"]: s for s in m["steps"]}
    assert steps["embed"]["notes"]["dim"] == 384
    assert steps["dedup.semantic"]["dropped"] >= 1
    assert steps["decontaminate"]["dropped"] == 1
    cov = steps["select.kcenter"]["notes"]["coverage"]
    assert cov["selected"]["max_distance"] < cov["random"]["max_distance"]
    rejects = read_jsonl(tmp_path / "out" / "rejects.jsonl")
    leak = next(r for r in rejects if r["step"] == "decontaminate")
    assert leak["detail"]["eval_row"].endswith("evals.jsonl:1") and leak["detail"]["ngram"].split()[0] == leaked.split()[0].lower()
    rows = read_jsonl(tmp_path / "out" / "data.jsonl")
    assert len(rows[0]["embedding"]) == 384 and rows[0]["embedding_why"] is None
    assert len(read_jsonl(tmp_path / "out" / "baseline_random.jsonl")) == 30

    again = run_recipe(load_recipe(tmp_path / "r.yaml"), recipe_dir=str(tmp_path), use_cache=False)
    strip = lambda man: {k: v for k, v in man.items() if k not in ("timings", "outputs")}
    assert strip(again.manifest) == strip(m)


def test_faiss_backend_when_installed():
    pytest.importorskip("faiss", reason="faiss is optional (pip install faiss-cpu)")
    X, labels = blobs([40, 40, 40, 40], dim=24, spread=0.03, seed=3)
    ds = vec_dataset(X)
    exact = dropped(build(SemanticDedup, eps=0.02, clusters=1).decide(ds))
    assert dropped(build(SemanticDedup, eps=0.02, clusters=4, backend="faiss").decide(ds)) == exact
    chosen = build(ClusterBalanced, rows=8, clusters=4, backend="faiss").select(ds)
    assert np.bincount(labels[chosen], minlength=4).tolist() == [2, 2, 2, 2]


def test_empty_inputs():
    empty = vec_dataset(np.ones((1, 4))).select([])  # no rows, every column
    assert build(SemanticDedup).decide(empty) == []
    no_vectors = vec_dataset(np.zeros((3, 4)), ok=[False, False, False])
    step = build(SemanticDedup)
    assert step.decide(no_vectors) == [None, None, None] and step.ctx.notes["rows_without_vector"] == 3
    with pytest.raises(CurateError, match="budget of 1 rows is larger than the 0 rows available"):
        build(KCenter, rows=1).select(no_vectors)
    index = OverlapIndex(13, 8, 4)
    assert index.find([[], words("a b c")]) == [None, None]


def test_cache_token_follows_the_eval_files(tmp_path):
    """What the pipeline's step cache key can include so that an edited eval file is not served a
    cached result (see the cache_token hook)."""
    f = tmp_path / "e.jsonl"
    f.write_text('{"q": "one"}\n')
    params = Decontaminate.Params(eval_sets=[{"path": "e.jsonl", "field": "q"}])
    before = Decontaminate.cache_token(params, str(tmp_path))
    f.write_text('{"q": "two"}\n')
    assert Decontaminate.cache_token(params, str(tmp_path)) != before
    targets = Target.Params(rows=1, targets=[{"path": "e.jsonl", "field": "q"}])
    assert Target.cache_token(targets, str(tmp_path))[0]["sha256"]


# -- dedup.semantic, fast mode: a static model proposes, MiniLM decides -----------------------------------


@pytest.fixture
def tiny_static_model(tmp_path):
    """A model2vec static model over a word-level vocabulary, with random (seeded) word vectors: enough to
    propose every pair of texts that share most words."""
    from model2vec import StaticModel
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    words_ = sorted({w for p in FAST_POOL for w in p[0].lower().replace("?", " ").replace(".", " ").split()})
    vocab = {"[UNK]": 0, "[PAD]": 1, **{w: i + 2 for i, w in enumerate(words_)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    vectors = np.random.default_rng(0).normal(size=(len(vocab), 32)).astype(np.float32)
    StaticModel(vectors, tok, normalize=True).save_pretrained(str(tmp_path / "m2v"))
    return str(tmp_path / "m2v")


FAST_POOL = [
    ("Write a short poem about the sea at night.", "a"),
    ("Write a short poem about the sea at night please.", "b"),  # a paraphrase of row 0
    ("Explain how photosynthesis works in green plants.", "c"),
    ("Explain how photosynthesis works in plants.", "d"),  # a paraphrase of row 2
    ("List three famous painters from Spain.", "e"),
    ("What is the capital city of Australia?", "f"),
    ("Give me a recipe for tomato soup.", "g"),
    ("How many legs does a spider have?", "h"),
]


def test_fast_semantic_dedup_embeds_only_candidates_and_agrees_with_full_mode(tiny_static_model, minilm, embed_cache):
    ds = pairs_dataset(FAST_POOL)
    fast = build(SemanticDedup, mode="fast", fast_model=tiny_static_model, candidate_threshold=0.6,
                 cache_dir=embed_cache)
    out = fast.decide(ds)
    full = build(SemanticDedup).decide(embedded(ds, embed_cache))
    assert dropped(out) == dropped(full) == [1, 3]
    assert out[1].duplicate_of == ds[0]["id"] and out[1].detail["similarity"] > 0.9
    notes = fast.ctx.notes
    assert notes["mode"] == "fast" and notes["rows_embedded"] < len(FAST_POOL)  # MiniLM saw the candidates only
    assert notes["candidate_pairs"] >= 2


def test_fast_mode_checks_its_model():
    with pytest.raises(CurateError, match="no model2vec model folder"):
        SemanticDedup.cache_token(SemanticDedup.Params(mode="fast", fast_model="missing/m2v"), ".")
