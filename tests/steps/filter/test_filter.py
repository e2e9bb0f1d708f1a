import math

import pytest
from pydantic import ValidationError

from curate.errors import CurateError
from curate.steps.filter.pattern import Pattern
from curate.steps.filter.threshold import Rule, Threshold
from tests.helpers import build, pairs_dataset

NAN = math.nan


@pytest.fixture
def scored():
    return pairs_dataset(
        [("a", "one"), ("b", "two words here and more"), ("c", ""), ("d", "x y z")],
        extra_columns={
            "response_words": [1, 5, 0, 3],
            "refusal": [0.0, 1.0, 0.0, 0.0],
            "nonalnum_ratio": [0.1, 0.2, NAN, 0.5],
            "nonalnum_ratio_why": [None, None, "empty response", None],
            "lang": ["en", "de", "", "en"],
            "lang_why": [None, None, "empty response", None],
        },
    )


def reasons(ds, **params):
    return [d.reason if d else None for d in build(Threshold, **params).decide(ds)]


# -- compact rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("response_words >= 3", {"column": "response_words", "min": 3}),
        ("response_words<=10", {"column": "response_words", "max": 10}),
        ("score > 0.5", {"column": "score", "above": 0.5}),
        ("refusal < 1", {"column": "refusal", "below": 1}),
        ("lang == en", {"column": "lang", "equals": "en"}),
        ("lang != 'de'", {"column": "lang", "not_in": ["de"]}),
        ("n == 2", {"column": "n", "equals": 2}),
        ("flag == true", {"column": "flag", "equals": True}),
    ],
)
def test_compact_rules_parse(text, expected):
    assert Rule.model_validate(text).model_dump() == expected


@pytest.mark.parametrize("text", ["response_words => 3", "response_words >=", ">= 3", "lang >= en", "just words"])
def test_malformed_compact_rule_shows_the_string(text):
    with pytest.raises(ValidationError) as e:
        Threshold.Params(rules=["refusal < 1", text])
    err = e.value.errors()[0]
    assert err["loc"] == ("rules", 1)
    assert repr(text) in err["msg"]


def test_structured_rules_and_their_checks():
    assert Rule.model_validate({"column": "lang", "in": ["en", "fr"]}).in_ == ["en", "fr"]
    assert Rule(column="lang", in_=["en"]).model_dump() == {"column": "lang", "in": ["en"]}
    with pytest.raises(ValidationError, match="no condition"):
        Rule(column="lang")
    with pytest.raises(ValidationError, match="no row can pass"):
        Rule(column="x", min=5, max=1)
    with pytest.raises(ValidationError):
        Rule.model_validate({"column": "x", "minimum": 1})  # unknown key
    with pytest.raises(ValidationError):
        Threshold.Params(rules=[])
    with pytest.raises(ValidationError):
        Threshold.Params(rules=["x > 1"], on_nan="skip")


def test_params_round_trip_through_the_manifest_form():
    p = Threshold.Params(rules=["lang == en", {"column": "lang", "in": ["en"]}, "refusal < 1"])
    dumped = p.model_dump(mode="json")
    assert dumped["rules"] == [
        {"column": "lang", "equals": "en"}, {"column": "lang", "in": ["en"]}, {"column": "refusal", "below": 1.0},
    ]
    assert Threshold.Params.model_validate(dumped) == p


# -- decisions -------------------------------------------------------------------------------------


def test_min_rule_reasons(scored):
    assert reasons(scored, rules=["response_words >= 3"]) == [
        "response_words=1 < min 3", None, "response_words=0 < min 3", None,
    ]


def test_each_condition_reason(scored):
    assert reasons(scored, rules=[{"column": "response_words", "max": 4}])[1] == "response_words=5 > max 4"
    assert reasons(scored, rules=["refusal < 1"]) == [None, "refusal=1, not < 1", None, None]
    assert reasons(scored, rules=["response_words > 1"]) == [
        "response_words=1, not > 1", None, "response_words=0, not > 1", None,
    ]
    assert reasons(scored, rules=[{"column": "lang", "in": ["en", "fr"]}])[1] == "lang='de' not in ['en', 'fr']"
    assert reasons(scored, rules=["lang != de"])[1] == "lang='de' is excluded (not_in ['de'])"
    assert reasons(scored, rules=["nonalnum_ratio <= 0.15"])[1] == "nonalnum_ratio=0.2 > max 0.15"


def test_nan_and_empty_values_use_the_why_column(scored):
    assert reasons(scored, rules=["nonalnum_ratio < 0.3"]) == [
        None, None, "nonalnum_ratio is NaN (empty response)", "nonalnum_ratio=0.5, not < 0.3",
    ]
    assert reasons(scored, rules=["lang == en"]) == [None, "lang='de' != 'en'", "lang is empty (empty response)", None]
    assert reasons(scored, rules=["lang == en"], on_nan="keep") == [None, "lang='de' != 'en'", None, None]


def test_nan_without_why_column():
    ds = pairs_dataset([("a", "b"), ("c", "d")], extra_columns={"score": [NAN, 2.0]})
    assert reasons(ds, rules=["score >= 1"]) == ["score is NaN", None]
    assert reasons(ds, rules=["score >= 1"], on_nan="keep") == [None, None]


def test_first_failing_rule_is_the_reason(scored):
    got = reasons(scored, rules=["refusal < 1", "response_words >= 3", "lang == en"])
    assert got == [
        "response_words=1 < min 3",
        "refusal=1, not < 1",
        "response_words=0 < min 3",
        None,
    ]
    decisions = build(Threshold, rules=["refusal < 1", "response_words >= 3"]).decide(scored)
    assert decisions[0].detail == {"rule": 1}


def test_unknown_column_names_it_and_suggests(scored):
    step = build(Threshold, rules=["refusal < 1", "respons_words >= 3"])
    with pytest.raises(CurateError) as e:
        step.decide(scored)
    assert e.value.where == "steps[0].filter.threshold.rules[1].column"
    msg = str(e.value)
    assert "'respons_words'" in msg and "did you mean 'response_words'" in msg and "nonalnum_ratio" in msg


def test_numeric_condition_on_a_string_column(scored):
    with pytest.raises(CurateError, match="holds string") as e:
        build(Threshold, rules=[{"column": "lang", "min": 1}]).decide(scored)
    assert e.value.where == "steps[0].filter.threshold.rules[0]"


# -- filter.pattern --------------------------------------------------------------------------------


def test_pattern_filter():
    ds = pairs_dataset([
        ("q1", "As an AI language model, I cannot do that."),
        ("q2", "Paris is the capital of France."),
        ("As an AI language model", "ok"),
    ])
    decisions = build(Pattern, patterns=["as an ai language model", r"\bcapital\b"]).decide(ds)
    assert [d.reason if d else None for d in decisions] == [
        "response matches /as an ai language model/", r"response matches /\bcapital\b/", None,
    ]
    assert decisions[0].detail == {"matched": "As an AI language model"}
    case = build(Pattern, patterns=["as an ai language model"], ignore_case=False).decide(ds)
    assert case == [None, None, None]
    prompt = build(Pattern, patterns=["^as an ai"], key="prompt").decide(ds)
    assert [d.reason if d else None for d in prompt] == [None, None, "prompt matches /^as an ai/"]


def test_pattern_bad_params():
    with pytest.raises(ValidationError) as e:
        Pattern.Params(patterns=["ok", "a(b"])
    assert e.value.errors()[0]["loc"] == ("patterns", 1)
    with pytest.raises(ValidationError):
        Pattern.Params(patterns=[])
    with pytest.raises(ValidationError):
        Pattern.Params(patterns=["x"], key="answer")
