"""dedup.exact, dedup.minhash and their shared keep policy."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import unicodedata

import numpy as np
import pytest
from datasets import Dataset
from pydantic import ValidationError

from curate.errors import CurateError
from curate.rows import make_row, normalise, row_id
from curate.steps.dedup.exact import ExactDedup
from curate.steps.dedup.keep import choose_kept
from curate.steps.dedup.lsh import components, lsh_params
from curate.steps.dedup.minhash import LSH_WEIGHTS, MinHashDedup
from curate.steps.dedup.shingles import shingle_hashes
from curate.steps.registry import get_step
from tests.helpers import build, pairs_dataset

WORDS = (
    "river stone light paper window garden silver market engine letter mountain cloud table orange "
    "winter forest signal bridge candle harbor pencil thunder valley mirror rocket meadow castle "
    "lantern planet whisper copper island ladder velvet canyon shadow marble feather compass"
).split()


def paragraph(seed: int, n: int = 80) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) + str(rng.randrange(50)) for _ in range(n))


def one_word_changed(text: str, at: int = 40) -> str:
    words = text.split()
    words[at] = "CHANGED"
    return " ".join(words)


def dropped(decisions) -> list[int]:
    return [i for i, d in enumerate(decisions) if d is not None]


# -- registry and params ---------------------------------------------------------------------------


def test_steps_are_registered():
    assert get_step("dedup.exact") is ExactDedup
    assert get_step("dedup.minhash") is MinHashDedup
    assert ExactDedup.role == MinHashDedup.role == "filter"


def test_params_are_checked():
    with pytest.raises(ValidationError, match="score_column"):
        ExactDedup.Params(keep="highest")
    with pytest.raises(ValidationError):
        ExactDedup.Params(key="answer")
    with pytest.raises(ValidationError):
        ExactDedup.Params(normalize=True)  # unknown key (the spelling is normalise)
    with pytest.raises(ValidationError, match="both bands and rows"):
        MinHashDedup.Params(bands=8)
    with pytest.raises(ValidationError, match="more than num_perm"):
        MinHashDedup.Params(bands=16, rows=16, num_perm=128)
    with pytest.raises(ValidationError):
        MinHashDedup.Params(threshold=0)
    assert MinHashDedup.Params(keep="highest", score_column="q").score_column == "q"


# -- keep policy ------------------------------------------------------------------------------------


def test_keep_first_longest_highest():
    groups = [[3, 1, 2], [5, 4]]
    assert choose_kept(groups, "first") == [(1, [2, 3]), (4, [5])]
    lengths = {1: 5, 2: 9, 3: 9, 4: 1, 5: 2}
    assert choose_kept(groups, "longest", lengths=lengths) == [(2, [1, 3]), (5, [4])]  # tie 2/3 -> first
    scores = [0, 0.5, float("nan"), 0.5, None, -1.0]
    assert choose_kept(groups, "highest", scores=scores) == [(1, [2, 3]), (5, [4])]  # NaN/None rank last


def test_keep_highest_all_missing_scores_keeps_first():
    assert choose_kept([[2, 0, 1]], "highest", scores=[math.nan, None, math.nan]) == [(0, [1, 2])]


# -- dedup.exact --------------------------------------------------------------------------------------


def test_exact_on_each_key():
    ds = pairs_dataset([("What is 2+2?", "4"), ("What is 2+2?", "Four."), ("Other", "4"), ("What is 2+2?", "4")])
    got = {key: dropped(build(ExactDedup, key=key).decide(ds)) for key in ("prompt", "response", "conversation", "first_user")}
    assert got == {"prompt": [1, 3], "response": [2, 3], "conversation": [3], "first_user": [1, 3]}


def test_exact_first_user_ignores_system_and_later_turns():
    a = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    b = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"},
         {"role": "user", "content": "More?"}, {"role": "assistant", "content": "Sure"}]
    ds = pairs_dataset([a, b])
    assert dropped(build(ExactDedup, key="first_user").decide(ds)) == [1]
    assert dropped(build(ExactDedup, key="prompt").decide(ds)) == []


def test_exact_drop_names_the_kept_row():
    ds = pairs_dataset([("a question", "x"), ("A  Question ", "y")])
    d = build(ExactDedup, key="prompt").decide(ds)
    assert d[0] is None
    assert d[1].reason == "exact duplicate (prompt)"
    assert d[1].duplicate_of == ds[0]["id"]
    assert d[1].detail == {"kept_index": 0, "group_size": 2}


def test_exact_normalise_on_and_off():
    ds = pairs_dataset([("Hello World", "r"), ("hello   world", "r"), ("HELLO\tWORLD\n", "r"), ("Hello World", "r2")])
    assert dropped(build(ExactDedup, key="prompt").decide(ds)) == [1, 2, 3]
    assert dropped(build(ExactDedup, key="prompt", normalise=False).decide(ds)) == [3]


def test_exact_unicode_normalisation():
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    ds = pairs_dataset([(composed, "r"), (decomposed, "r")])
    assert dropped(build(ExactDedup, key="prompt").decide(ds)) == [1]
    assert dropped(build(ExactDedup, key="prompt", normalise=False).decide(ds)) == []


def test_normalise_is_the_regex_definition():
    # normalise() splits and joins instead of a regex; it must give what the regex gives, Unicode spaces too
    samples = ["  A\u00a0b\u3000C  ", "x\u2028y\u0085z", "cafe\u0301 \t\n CAFÉ", "", " ", "İstanbul ǅ",
               "a\x1c\x1d\x1e\x1fb\x0b\x0cc"]
    samples += [paragraph(i, 30) for i in range(5)]
    rng = random.Random(0)  # ASCII takes a bytes road: every kind of ASCII space, in runs of any length
    samples += ["".join(rng.choice(["a", "B", "z", "Z", "0", ".", "_", "@", "[", "`", "{", "\x00", "\x7f"] +
                                   [" " * rng.randrange(1, 40)] + list(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"))
                        for _ in range(rng.randrange(0, 50))) for _ in range(5000)]
    by_regex = [re.sub(r"\s+", " ", unicodedata.normalize("NFC", s)).strip().lower() for s in samples]
    assert [normalise(s) for s in samples] == by_regex


def test_row_id_hashes_the_json_of_the_normalised_turns():
    messages = [{"role": "user", "content": 'Say "hi"\\ \u00e9\n\x00 \u2028 😀'}, {"role": "assistant", "content": "Hi\t!"}]
    payload = json.dumps([[m["role"], normalise(m["content"])] for m in messages], ensure_ascii=False)
    assert row_id(messages) == hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def test_exact_leaves_empty_texts_alone():
    ds = pairs_dataset([("", "a"), ("", "b"), ("   ", "c"), ("q", "d")])
    assert dropped(build(ExactDedup, key="prompt").decide(ds)) == []
    assert dropped(build(ExactDedup, key="prompt", normalise=False).decide(ds)) == []


def test_exact_keep_longest_and_highest():
    ds = pairs_dataset(
        [("p", "short"), ("p", "the longest answer"), ("p", "medium one")],
        extra_columns={"quality": [0.2, float("nan"), 0.9]},
    )
    d = build(ExactDedup, key="prompt", keep="longest").decide(ds)
    assert dropped(d) == [0, 2] and d[0].duplicate_of == ds[1]["id"]
    d = build(ExactDedup, key="prompt", keep="highest", score_column="quality").decide(ds)
    assert dropped(d) == [0, 1] and d[0].detail["kept_index"] == 2


def test_exact_keep_highest_missing_column_is_a_curate_error():
    ds = pairs_dataset([("p", "a"), ("p", "b")])
    with pytest.raises(CurateError, match="'quality'"):
        build(ExactDedup, key="prompt", keep="highest", score_column="quality").decide(ds)
    ds = pairs_dataset([("p", "a"), ("q", "b")])  # no duplicates: the recipe is still wrong
    with pytest.raises(CurateError, match="'quality'"):
        build(ExactDedup, key="prompt", keep="highest", score_column="quality").decide(ds)


def test_exact_across_sources_and_after_select():
    ds = pairs_dataset([("x", "1"), ("y", "2"), ("x", "3")], source=["a", "b", "c"]).select([2, 1, 0])
    d = build(ExactDedup, key="prompt").decide(ds)
    assert dropped(d) == [2] and d[2].duplicate_of == ds[0]["id"]


def test_exact_empty_dataset():
    ds = pairs_dataset([("x", "1")]).select([])
    assert build(ExactDedup).decide(ds) == []


# -- dedup.minhash ------------------------------------------------------------------------------------


def test_minhash_finds_a_planted_near_duplicate_and_keeps_distinct_rows():
    base = [paragraph(i) for i in range(6)]
    ds = pairs_dataset([(t, "same answer") for t in base] + [(one_word_changed(base[2]), "same answer")])
    d = build(MinHashDedup).decide(ds)
    assert dropped(d) == [6]
    drop = d[6]
    assert drop.reason == "near duplicate (minhash jaccard>=0.8)"
    assert drop.duplicate_of == ds[2]["id"]
    assert set(drop.detail) == {"jaccard", "kept_index", "cluster", "cluster_size"}
    assert drop.detail["kept_index"] == 2 and drop.detail["cluster_size"] == 2 and drop.detail["cluster"] == 0
    assert 0.8 <= drop.detail["jaccard"] <= 1.0
    json.dumps(drop.detail)  # the ledger can write it


def test_minhash_char_shingles():
    base = [paragraph(i, 40) for i in range(4)]
    ds = pairs_dataset([(t, "") for t in base] + [(base[1].replace("river", "rivers", 1) + " ", "")])
    assert dropped(build(MinHashDedup, key="prompt", shingle="char", ngram=5).decide(ds)) == [4]


def test_minhash_no_duplicates():
    ds = pairs_dataset([(paragraph(i), paragraph(100 + i)) for i in range(20)])
    assert dropped(build(MinHashDedup).decide(ds)) == []


def test_minhash_empty_single_and_zero_rows():
    ds = pairs_dataset([("q1", ""), ("q2", ""), ("q3", "   "), ("q4", "an answer")])
    assert dropped(build(MinHashDedup, key="response").decide(ds)) == []  # empties are not duplicates
    assert build(MinHashDedup).decide(pairs_dataset([("only", "row")])) == [None]
    assert build(MinHashDedup).decide(pairs_dataset([("x", "1")]).select([])) == []


def test_minhash_texts_shorter_than_the_ngram():
    ds = pairs_dataset([("Hi there", "a"), ("hi   THERE", "b"), ("hi you", "c"), ("hi", "d")])
    d = build(MinHashDedup, key="prompt", ngram=5).decide(ds)
    assert dropped(d) == [1] and d[1].detail["jaccard"] == 1.0


def test_minhash_is_deterministic_and_seeded():
    base = [paragraph(i) for i in range(10)]
    texts = base + [one_word_changed(t, at=10 + i) for i, t in enumerate(base[:5])]
    ds = pairs_dataset([(t, "r") for t in texts])
    first = build(MinHashDedup, seed=3).decide(ds)
    again = build(MinHashDedup, seed=3).decide(pairs_dataset([(t, "r") for t in texts]))
    assert first == again
    assert dropped(first) == [10, 11, 12, 13, 14]
    # an explicit seed param wins over the step's seed from the recipe
    a = MinHashDedup(MinHashDedup.Params(seed=7), _ctx(seed=1)).decide(ds)
    b = MinHashDedup(MinHashDedup.Params(seed=7), _ctx(seed=2)).decide(ds)
    assert a == b


def test_minhash_star_clusters_never_chain_and_components_do():
    a = paragraph(1, 120)
    b = one_word_changed(a, at=30)
    c = one_word_changed(b, at=90)  # two words from a: below 0.9 with a, above with b
    other = paragraph(2, 120)
    ds = pairs_dataset([(a, "x"), (other, "y"), (b, "x" * 50), (c, "x")])
    d = build(MinHashDedup, threshold=0.9, num_perm=256).decide(ds)
    assert dropped(d) == [2]  # b is within 0.9 of a; c is not (a~b, b~c, but a and c are less alike)
    assert d[2].duplicate_of == ds[0]["id"] and d[2].detail["jaccard"] >= 0.9
    # keep: longest keeps b (the longest conversation): a and c are each within 0.9 of it
    d = build(MinHashDedup, threshold=0.9, num_perm=256, keep="longest").decide(ds)
    assert dropped(d) == [0, 3] and {d[0].duplicate_of, d[3].duplicate_of} == {ds[2]["id"]}
    # components: the old chain, c goes for a too
    d = build(MinHashDedup, threshold=0.9, num_perm=256, cluster="components").decide(ds)
    assert dropped(d) == [2, 3] and d[3].duplicate_of == ds[0]["id"] and d[3].detail["cluster_size"] == 3


def test_minhash_copies_of_a_dropped_row_go_with_it():
    """Verbatim copies share one signature and walk as one row: when the first of them is dropped for an
    earlier near-duplicate, its copies are too (they are as near to it), and a copy group without
    neighbours keeps its best row."""
    a = paragraph(1, 120)
    near = one_word_changed(a, at=60)
    lone = paragraph(2, 120)
    ds = pairs_dataset([(near, "n"), (a, "a"), (a, "a"), (lone, "l"), (a, "a"), (lone, "l")])
    d = build(MinHashDedup, threshold=0.8).decide(ds)
    assert dropped(d) == [1, 2, 4, 5]
    assert {d[i].duplicate_of for i in (1, 2, 4)} == {ds[0]["id"]} and d[5].duplicate_of == ds[3]["id"]
    assert d[2].detail["jaccard"] == d[1].detail["jaccard"] < 1.0 and d[5].detail["jaccard"] == 1.0
    # keep: longest prefers the copy with the longest answer: it stands for its group
    ds = pairs_dataset([(lone, "l"), (lone, "l" * 9), (lone, "l")])
    d = build(MinHashDedup, threshold=0.8, keep="longest").decide(ds)
    assert dropped(d) == [0, 2] and {d[0].duplicate_of, d[2].duplicate_of} == {ds[1]["id"]}


def test_minhash_verifies_pairs_by_exact_jaccard():
    from curate.steps.dedup.shingles import exact_jaccard

    texts = [paragraph(3, 100), one_word_changed(paragraph(3, 100), 50), paragraph(4, 100)]
    j = exact_jaccard(lambda idx: [texts[i] for i in idx], np.array([0, 0]), np.array([1, 2]), 5, "word")
    # one changed word removes the 5 shingles that hold it (of 96) from each side: 91 / 101
    assert j[0] == pytest.approx(91 / 101) and j[1] < 0.05
    step = build(MinHashDedup, threshold=0.8)
    step.decide(pairs_dataset([(t, "") for t in texts]))
    assert step.ctx.notes["verified_pairs"] == 1 and step.ctx.notes["candidate_pairs"] >= 1


def test_a_dedup_that_drops_most_of_a_source_raises_an_alarm():
    base = paragraph(7, 100)
    rows = [(one_word_changed(base, i), "r") for i in range(10, 60, 5)] + [(paragraph(8 + i), "r") for i in range(5)]
    ds = pairs_dataset(rows, source=["templated"] * 10 + ["varied"] * 5)
    step = build(MinHashDedup, threshold=0.8)
    d = step.decide(ds)
    assert sum(x is not None for x in d[:10]) >= 6 and not any(d[10:])
    alarm = step.ctx.notes["alarm"]
    assert list(alarm) == ["templated"] and alarm["templated"]["share"] > 0.5
    assert step.ctx.notes["largest_clusters"][0] >= 2


def test_minhash_keep_highest_with_nan():
    base = paragraph(5)
    ds = pairs_dataset(
        [(base, "r"), (one_word_changed(base, 20), "r"), (one_word_changed(base, 60), "r")],
        extra_columns={"score": [float("nan"), 0.1, 0.3]},
    )
    d = build(MinHashDedup, keep="highest", score_column="score").decide(ds)
    # row 2 (score 0.3) is kept; the base (one word from it, NaN score) goes; row 1 is two words from row 2
    assert dropped(d)[0] == 0 and d[0].detail["kept_index"] == 2
    assert all(d[i].detail["jaccard"] >= 0.8 for i in dropped(d))
    with pytest.raises(CurateError, match="'quality'"):
        build(MinHashDedup, keep="highest", score_column="quality").decide(ds)


def test_shingle_hashes_match_string_shingles():
    """The vectorised hashing sees exactly the shingle sets of the normalised text."""

    def reference(text, n, shingle):
        t = normalise(text)
        units = (t.split(" ") if t else []) if shingle == "word" else list(t)
        join = " ".join if shingle == "word" else "".join
        if not units:
            return []
        if len(units) < n:
            return [join(units)]
        return [join(units[i : i + n]) for i in range(len(units) - n + 1)]

    rng = random.Random(0)
    alphabet = ["a", "b", "Cc", "dé", "e\u0301", " ", "  ", "\n", "\t", "\u00a0", "\u3000", "中文", "\x00", ".", "\u200b"]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(400)]
    for shingle in ("word", "char"):
        for n in (1, 3, 5):
            hashes, offsets = shingle_hashes(texts, n, shingle)
            seen: dict[str, int] = {}
            for k, text in enumerate(texts):
                ref = reference(text, n, shingle)
                got = hashes[offsets[k] : offsets[k + 1]].tolist()
                assert len(got) == len(ref)
                for s, h in zip(ref, got):
                    assert seen.setdefault(s, h) == h
            assert len(set(seen.values())) == len(seen)  # distinct shingles, distinct hashes


def test_lsh_params_match_datasketch():
    lsh = pytest.importorskip("datasketch.lsh")
    for threshold in (0.5, 0.7, 0.8, 0.9):
        for num_perm in (64, 128, 256):
            assert lsh_params(threshold, num_perm) == lsh._optimal_param(threshold, num_perm, 0.5, 0.5)
    assert lsh_params(0.8, 128) == (9, 13)
    assert lsh_params(0.8, 128, *LSH_WEIGHTS) == (14, 9)  # the step's default favours recall


def test_default_banding_recalls_one_word_edits():
    """datasketch's equal weights (9 x 13) miss ~15% of pairs at J~0.88; the default must not."""
    base = [paragraph(i) for i in range(150)]
    ds = pairs_dataset([(t, "") for t in base] + [(one_word_changed(t, at=i % 80), "") for i, t in enumerate(base)])
    found = len(dropped(build(MinHashDedup, key="prompt").decide(ds)))
    assert found >= 145


def test_components_roots_are_smallest_members():
    root = components(7, np.array([5, 1, 3, 4]), np.array([6, 3, 4, 2]))
    assert root.tolist() == [0, 1, 1, 1, 1, 5, 5]
    assert components(3, np.array([], dtype=int), np.array([], dtype=int)).tolist() == [0, 1, 2]


def _ctx(seed):
    from tests.helpers import context

    return context("dedup.minhash", seed)


# -- real data ----------------------------------------------------------------------------------------


def alpaca_pool(shared_data, names) -> Dataset:
    """Canonical rows from alpaca files: prompt = instruction + ("\\n\\n" + input if input)."""
    rows = []
    for name in names:
        for r in json.loads((shared_data / name).read_text(encoding="utf-8")):
            prompt = r["instruction"] + ("\n\n" + r["input"] if r["input"] else "")
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": r["output"]}]
            rows.append(make_row(name.split(".")[0], messages, {}))
    return Dataset.from_list(rows)


def test_real_alpaca_gpt4_and_cherry_prompt_overlaps(shared_data):
    """57 alpaca_gpt4 prompts reappear in cherry_alpaca (other responses); 14 alpaca_gpt4 rows repeat
    an earlier alpaca_gpt4 prompt (13 prompts: 12 twice, one three times). With keep: first and
    alpaca_gpt4 first, prompt dedup drops 57 cherry rows + 14 alpaca_gpt4 rows = 71 of 4110, with or
    without normalisation."""
    ds = alpaca_pool(shared_data, ["alpaca_gpt4_en_demo_999.json", "cherry_alpaca_5_percent.json"])
    assert len(ds) == 999 + 3111
    sources = ds["source"][:]
    for normalise_ in (True, False):  # normalising finds no extra overlaps in this data
        d = build(ExactDedup, key="prompt", normalise=normalise_).decide(ds)
        gone = dropped(d)
        assert len(gone) == 71
        assert sum(sources[i] == "cherry_alpaca_5_percent" for i in gone) == 57
        assert sum(sources[i] == "alpaca_gpt4_en_demo_999" for i in gone) == 14
        # 57 + 13 kept rows less one: the Mona Lisa prompt is both repeated in-file and in cherry
        assert len({d[i].detail["kept_index"] for i in gone}) == 69
    # the 14 in-file repeats are whole-conversation copies; the 57 cross-file ones differ in the response
    assert len(dropped(build(ExactDedup, key="conversation").decide(ds))) == 14
    # near-duplicate search on prompts finds at least the exact ones
    near = dropped(build(MinHashDedup, key="prompt").decide(ds))
    assert set(gone) <= set(near)


def test_exact_jaccard_on_the_engine_workers_is_the_same_as_in_process(shared_data):
    """The MinHash decision hands its shingling to the engine's workers (`ctx.map`) in chunks of rows: the
    similarities are those of one process, however the rows are chunked."""
    from functools import partial

    import pyarrow as pa

    from curate.engine.executor import LocalExecutor
    from curate.steps.dedup.minhash import _take, _texts_of
    from curate.steps.dedup.shingles import exact_jaccard

    rows = json.loads((shared_data / "code_alpaca_2k.json").read_text())[:60]
    outputs = [r["output"] for r in rows]
    messages = [[{"role": "user", "content": "q"}, {"role": "assistant", "content": o}] for o in outputs]
    messages += [[{"role": "user", "content": "q"}, {"role": "assistant", "content": o + " and more"}] for o in outputs]
    table = pa.table({"messages": messages})
    texts = partial(_texts_of, fetch=partial(_take, table), key="response")
    rng = np.random.default_rng(0)
    a = np.concatenate([np.arange(60), rng.integers(0, 120, 40)])
    b = np.concatenate([np.arange(60, 120), rng.integers(0, 120, 40)])
    alone = exact_jaccard(texts, a, b, 5, "word")
    executor = LocalExecutor(2)
    try:
        shared = exact_jaccard(texts, a, b, 5, "word", chunk=7, map_tasks=executor.map)
        assert executor._pool is not None  # the chunks did run on the workers
    finally:
        executor.close()
    assert np.array_equal(alone, shared)
    assert np.median(alone[:60]) > 0.7 and len(np.unique(alone)) > 20  # planted pairs similar; many values
