import math
import time

import pytest
from pydantic import ValidationError

from curate.steps.score.heuristics import DEFAULT_BOILERPLATE, DEFAULT_REFUSALS, Heuristics, _any_of
from tests.helpers import build, pairs_dataset


def score(pairs, **params):
    return build(Heuristics, **params).score(pairs_dataset(pairs))


def test_lengths_ratio_and_symbols_by_hand():
    s = score([("Write a poem about cats", "Hi, you!")])
    assert s["prompt_chars"] == [23]
    assert s["prompt_words"] == [5]
    assert s["response_chars"] == [8]
    assert s["response_words"] == [2]
    assert s["turns"] == [2]
    assert s["response_prompt_ratio"] == [pytest.approx(2 / 5)]
    assert s["nonalnum_ratio"] == [pytest.approx(2 / 8)]  # "," and "!"
    assert s["nonalnum_ratio_why"] == [None]


def test_multi_turn_prompt_is_everything_before_the_last_answer():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Name a color"},
        {"role": "assistant", "content": "Blue"},
    ]
    s = score([messages])
    # "Be brief.\nHi there\nHello\nName a color"
    assert s["prompt_chars"] == [37]
    assert s["prompt_words"] == [8]
    assert s["response_chars"] == [4]
    assert s["response_words"] == [1]
    assert s["turns"] == [5]
    assert s["response_prompt_ratio"] == [pytest.approx(1 / 8)]


def test_repetition_ratio():
    text = "The cat sat on the mat and the cat sat."
    # 8 word trigrams; "the cat sat" occurs twice -> 2 of 8 are repeats
    assert score([("q", text)])["rep_ngram_ratio"] == [pytest.approx(2 / 8)]
    # 9 bigrams; "the cat" and "cat sat" twice each -> 4 of 9
    assert score([("q", text)], ngram=2)["rep_ngram_ratio"] == [pytest.approx(4 / 9)]
    assert score([("q", "Yes yes.")])["rep_ngram_ratio"] == [0.0]  # fewer words than n
    assert score([("q", "a b c a b c")])["rep_ngram_ratio"] == [0.5]  # abc, bca, cab, abc


def test_empty_response_gets_nan_with_reason():
    s = score([("hi", ""), ("hi", "   "), ("ok", "Fine.")])
    for col in ("response_prompt_ratio", "rep_ngram_ratio", "nonalnum_ratio"):
        assert math.isnan(s[col][0]) and math.isnan(s[col][1])
        assert not math.isnan(s[col][2])
        assert s[f"{col}_why"] == ["empty response", "empty response", None]
    assert s["response_chars"] == [0, 3, 5]
    assert s["response_words"] == [0, 0, 1]
    assert s["refusal"] == [0.0, 0.0, 0.0]


def test_row_without_assistant_turn():
    s = score([[{"role": "user", "content": "Anyone there?"}]])
    assert s["prompt_words"] == [2]
    assert s["response_words"] == [0]
    assert math.isnan(s["nonalnum_ratio"][0])
    assert s["nonalnum_ratio_why"] == ["no assistant turn"]


def test_refusal_and_boilerplate_flags():
    s = score([
        ("a", "I'm sorry, but I cannot help with that."),
        ("b", "I’m sorry, but I can’t do that."),  # typographic apostrophes
        ("c", "I cannot assist with this request."),
        ("d", "Sorry to hear that. Restart the router."),
        ("e", "Restart the router. I hope this helps!"),
        ("f", "As an AI language model, I have no opinion."),
    ])
    assert s["refusal"] == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    assert s["boilerplate"] == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]


def test_custom_patterns_are_case_insensitive():
    s = score([("a", "Nope, not today"), ("b", "Sure, nope")], refusal_patterns=["^nope"], boilerplate_patterns=[])
    assert s["refusal"] == [1.0, 0.0]
    assert s["boilerplate"] == [0.0, 0.0]
    # patterns that cannot be joined into one regex (groups, a global flag) still work
    s = score([("a", "no no way"), ("b", "x\ny"), ("c", "fine")], refusal_patterns=[r"(\w+) \1", r"(?s)x.y"])
    assert s["refusal"] == [1.0, 1.0, 0.0]


def test_bad_params():
    with pytest.raises(ValidationError) as e:
        Heuristics.Params(refusal_patterns=["ok", "[unclosed"])
    assert e.value.errors()[0]["loc"] == ("refusal_patterns", 1)
    with pytest.raises(ValidationError):
        Heuristics.Params(ngram=0)
    with pytest.raises(ValidationError):
        Heuristics.Params(n_gram=2)


def test_one_value_per_row_and_fast():
    pairs = [(f"Question number {i} about things?", "An answer that repeats itself, an answer. " * (i % 20))
             for i in range(7000)]
    ds = pairs_dataset(pairs)
    t = time.perf_counter()
    s = build(Heuristics).score(ds)
    elapsed = time.perf_counter() - t
    assert all(len(v) == 7000 for v in s.values())
    assert elapsed < 5  # about a second on a laptop; the bound only catches accidental quadratic work


def test_rank_within_groups():
    from curate.steps.registry import get_step

    ds = pairs_dataset([("a", "x")] * 5, source=["s", "s", "s", "t", "t"],
                       extra_columns={"w": [10.0, 30.0, 20.0, 1.0, float("nan")]})
    cols = build(get_step("score.rank"), column="w", by="source").score(ds)
    assert cols["w_pct"][:4] == [1 / 3, 1.0, 2 / 3, 1.0]
    assert math.isnan(cols["w_pct"][4]) and cols["w_pct_why"][4] == "w is missing"
    pooled = build(get_step("score.rank"), column="w", name="r", descending=False).score(ds)["r"]
    assert pooled[:4] == [0.75, 0.25, 0.5, 1.0]  # lowest value ranks first


def test_the_word_hints_never_change_a_result_on_real_rows(shared_data):
    """Regexes are skipped on texts without the words every match needs (curate.steps.hints): the same
    answers as running every regex on every text, for heuristics, clean and filter.pattern."""
    from curate.specs.source import Source
    from curate.sources.load import load_source
    from curate.steps.clean.text import Clean
    from curate.steps.hints import Gate

    rows = []
    for name in ("alpaca_gpt4_en_demo_999.json", "cherry_alpaca_5_percent.json", "code_alpaca_2k.json", "lima_train.json"):
        rows += load_source("x", Source(path=str(shared_data / name))).rows
    planted = [("Hi", "As a AI language model, I can't help. I'm sorry, but I cannot do that."),
               ("Hey", "I hope this helps! Feel free to ask. As of my last update, my knowledge cut-off is 2021.")]
    ds = pairs_dataset(planted + [(r["messages"][0]["content"], r["messages"][-1]["content"]) for r in rows])
    fast, slow = build(Heuristics), build(Heuristics)
    slow._refusal = _any_of(DEFAULT_REFUSALS, gated=False)
    slow._boilerplate = _any_of(DEFAULT_BOILERPLATE, gated=False)
    a, b = fast.score(ds), slow.score(ds)
    assert a["refusal"] == b["refusal"] and a["boilerplate"] == b["boilerplate"]
    assert sum(a["refusal"]) >= 2 and sum(a["boilerplate"]) >= 2  # the rows that match still match
    fast_clean, slow_clean = build(Clean), build(Clean)
    slow_clean._gate = Gate(slow_clean.params.boilerplate, enabled=False)
    texts = [m["content"] for r in rows for m in r["messages"]] + [p[1] for p in planted]
    assert [fast_clean.clean_turn("assistant", t) for t in texts] == [slow_clean.clean_turn("assistant", t) for t in texts]
    from curate.steps.filter.pattern import Pattern

    patterns = [r"\bas an ai language model\b", r"\bI (?:don't|do not) have (?:personal )?(?:opinions|feelings)\b",
                r"(?i)sorry", r"[0-9]{4}-[0-9]{2}", r"\bfoo(?:bar)?baz"]
    fast_pattern, slow_pattern = build(Pattern, patterns=patterns), build(Pattern, patterns=patterns)
    slow_pattern._gate = Gate(patterns, enabled=False)
    assert [d and d.reason for d in fast_pattern.decide(ds)] == [d and d.reason for d in slow_pattern.decide(ds)]


def test_the_ascii_road_counts_as_the_regexes_do():
    import random
    import re
    import string

    from curate.steps.score.heuristics import _nonalnum, _words

    rng = random.Random(0)
    alphabet = string.printable + "\x00\x01\x1c\x1f\x7f_"
    assert _words("Ünïcode Wörds, don’t") == [w.encode() for w in ["ünïcode", "wörds", "don", "t"]]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 80)))
        assert [w.decode() for w in _words(text)] == re.findall(r"\w+", text.lower())
        assert _nonalnum(text) == len(re.findall(r"[^\w\s]|_", text)) / len(text)
    # mostly-ASCII text with odd characters (the pieces' road) and mostly non-ASCII text (the regex's): a
    # capital sigma (lower-cased by its neighbours), İ and the Kelvin sign (lower-case to ASCII), ß, other
    # scripts' digits, marks, Unicode spaces, curly quotes, an emoji and a lone surrogate
    odd = "ΣσİKßé٣中\u0301\u00a0\u2003\u3000’—🙂\ud800_"
    for share in (0.02, 0.2, 0.9):
        for _ in range(3000):
            text = "".join(rng.choice(odd) if rng.random() < share else rng.choice(alphabet)
                           for _ in range(rng.randrange(1, 120)))
            want = re.findall(r"\w+", text.lower())
            assert [w.decode("utf-8", "surrogatepass") for w in _words(text)] == want, text
            assert _nonalnum(text) == len(re.findall(r"[^\w\s]|_", text)) / len(text), text


def test_fast_search_finds_the_same_match_as_search(shared_data):
    """curate.steps.hints.fast_search drops a leading \\b to find where to start, then runs the pattern itself
    from there: the same match (span and text) as `pattern.search` for every pattern and text, including
    texts where the relaxed pattern matches first inside a word ("has a" before "as a")."""
    import re

    from curate.specs.source import Source
    from curate.sources.load import load_source
    from curate.steps.hints import fast_search

    texts = ["has a cat as an AI", "was an", "as an", "", "xas a, as a", "I cannot help", "Icannot", "_as a", "é as a"]
    for name in ("alpaca_gpt4_en_demo_999.json", "lima_train.json", "code_alpaca_2k.json"):
        texts += [m["content"] for r in load_source("x", Source(path=str(shared_data / name))).rows for m in r["messages"]]
    patterns = DEFAULT_REFUSALS + DEFAULT_BOILERPLATE + [r"\bas a", r"\bfoo|as", r"\b", r"\b\w+ing\b", r"\b(?:an?|the) \w+",
                                                         r"\b{2}x", r"\b+", r"\\bas", r"as a\b"]
    relaxed = 0
    for source in patterns:
        for flags in (0, re.IGNORECASE):
            try:
                pattern = re.compile(source, flags)
            except re.error:
                continue
            search = fast_search(pattern)
            relaxed += search != pattern.search
            for text in texts:
                got, want = search(text), pattern.search(text)
                assert (got and (got.span(), got.group())) == (want and (want.span(), want.group())), (source, text[:80])
    assert relaxed >= 2 * 15  # the \b patterns above took the fast road
