import pytest
from pydantic import ValidationError

from curate.steps.clean.text import Clean
from tests.helpers import apply_step, build, pairs_dataset


def clean(text, role="assistant", **params):
    return build(Clean, **params).clean_turn(role, text)


def test_nfc():
    assert clean("cafe\u0301") == "caf\u00e9"
    assert clean("cafe\u0301", nfc=False) == "cafe\u0301"


def test_whitespace_collapses_runs_and_blank_lines():
    assert clean("  Hello   world \t!  \r\n\n\n\nBye  ") == "Hello world !\n\nBye"
    assert clean("a \n \n \nb") == "a\n\nb"  # lines of spaces count as blank
    assert clean("  Hello   world  ", whitespace=False) == "  Hello   world  "


def test_whitespace_keeps_indentation_and_code_blocks():
    text = "Do this:\n    indented  line\n```python\ndef f():\n    x  =  1\n\n\n\n    return x\n```\nDone."
    assert clean(text) == text.replace("indented  line", "indented line")  # the code block is untouched
    # an answer that opens with indented code keeps its first indentation
    assert clean("\n    a = 1\n    b = 2\n") == "    a = 1\n    b = 2"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("As an AI language model, I don't have personal opinions, but pizza is widely loved.",
         "Pizza is widely loved."),
        ("As an AI language model, I cannot browse the internet. However, here is a summary.",
         "However, here is a summary."),
        ("Sure! As an AI language model, here is a poem:\nRoses.", "Sure! Here is a poem:\nRoses."),
        ("As a large language model trained by OpenAI, I’m not able to feel\nSecond line of the answer.", "Second line of the answer."),
        ("Paris is the capital of France.", "Paris is the capital of France."),
    ],
)
def test_default_boilerplate(text, expected):
    assert clean(text) == expected


def test_boilerplate_only_on_assistant_turns_and_configurable():
    text = "As an AI language model, here is a poem."
    assert clean(text, role="user") == text
    assert clean(text, boilerplate=[]) == text
    assert clean("Hello there, nice to meet you! Cheers, Bob", boilerplate=[r",?\s*cheers, \w+"]) == "Hello there, nice to meet you!"


def test_invalid_boilerplate_regex_fails_validation_with_its_index():
    with pytest.raises(ValidationError) as e:
        Clean.Params(boilerplate=["fine", "(unclosed"])
    err = e.value.errors()[0]
    assert err["loc"] == ("boilerplate", 1)
    assert "(unclosed" in err["msg"]


def test_bad_params():
    with pytest.raises(ValidationError, match="unknown role"):
        Clean.Params(roles=["assistant", "bot"])
    with pytest.raises(ValidationError):
        Clean.Params(strip_link=True)  # unknown key


def test_strip_links():
    text = "Read [the docs](https://x.com/a) now (https://x.com/b), or visit https://example.com/page."
    assert clean(text, strip_links=True) == "Read the docs now, or visit."
    assert clean(text) == text  # off by default
    # URLs inside code survive
    code = "Run `curl https://x.com/api` then:\n```\nget('https://x.com')\n```"
    assert clean(code, strip_links=True) == code
    assert clean("See ![a cat](http://img/cat.png).", strip_links=True) == "See a cat."


def test_drop_article_refs():
    text = "This article explains how to bake. First, preheat the oven. In this article, we also cover X!\nMix."
    assert clean(text, drop_article_refs=True) == "First, preheat the oven.\nMix."
    assert clean("This wikiHow teaches you to knit. Cast on.", drop_article_refs=True) == "Cast on."
    assert clean(text) == text  # off by default


def test_roles_limit_what_is_cleaned():
    assert clean("  a   b  ", role="user", roles=["assistant"]) == "  a   b  "
    assert clean("  a   b  ", role="system", roles=["system"]) == "a b"


def test_transform_keeps_rows_order_and_columns():
    pairs = [
        ("  Question one?  ", "As an AI language model, here is the answer."),
        ("Two", "Fine   as it is"),
        ("Three", ""),  # empties stay; clean never drops
        ([{"role": "system", "content": " Be  kind. "}, {"role": "user", "content": "x"},
          {"role": "assistant", "content": "y"}]),
    ]
    ds = pairs_dataset(pairs, extra_columns={"score": [1.0, 2.0, 3.0, 4.0]})
    step = build(Clean)
    out = apply_step(step, ds)
    assert out.column_names == ds.column_names
    assert list(out["id"]) == list(ds["id"])
    assert list(out["score"]) == [1.0, 2.0, 3.0, 4.0]
    assert list(out["meta"]) == list(ds["meta"])
    assert [[m["content"] for m in ms] for ms in out["messages"]] == [
        ["Question one?", "Here is the answer."],
        ["Two", "Fine as it is"],
        ["Three", ""],
        ["Be kind.", "x", "y"],
    ]
    assert [[m["role"] for m in ms] for ms in out["messages"]][3] == ["system", "user", "assistant"]
    assert step.ctx.counts["rows_changed"] == 3


def test_a_turn_that_is_only_a_disclaimer_is_left_for_the_filters():
    step = build(Clean)
    refusal = "I'm sorry, but as an AI language model I cannot help with that."
    assert step.clean_turn("assistant", refusal) == refusal  # not cut down to "I'm sorry, but"
    answer = "As an AI language model, I don't have opinions, but many people enjoy long walks in the park."
    assert step.clean_turn("assistant", answer) == "Many people enjoy long walks in the park."
    assert build(Clean, min_words_left=0).clean_turn("assistant", refusal) == "I'm sorry, but"
