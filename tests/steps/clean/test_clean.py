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


# -- code is never changed ------------------------------------------------------------------------------


def test_code_inside_prose_keeps_every_character():
    fmt = "print('{:<{}}  {:<{}}'.format(a, 10, b, 10))"
    text = (f"Use this:\n{fmt}\nIt aligns  the columns.\n"
            "In JavaScript, call fetch('https://api.example.com/v1/items') and read `res.json()  ` after.\n"
            "See https://example.com/docs  for more, or the [guide](https://example.com/guide).")
    out = clean(text, strip_links=True)
    assert fmt in out.split("\n")  # a line of code keeps its inner spacing
    assert "It aligns the columns." in out  # prose does not
    assert "fetch('https://api.example.com/v1/items')" in out  # a URL in quotes stays
    assert "`res.json()  `" in out  # inline code keeps its spaces
    assert "See for more, or the guide." in out  # prose links go, a markdown link keeps its text


def test_a_turn_that_is_code_loses_only_trailing_whitespace():
    program = "def pad(s):\n    return  '{:>10}'.format(s)   \n\n\n\nx  =  pad('a')  \n"
    assert clean(program, strip_links=True) == "def pad(s):\n    return  '{:>10}'.format(s)\n\n\n\nx  =  pad('a')"
    html = "<a href=\"https://example.com\">link</a>\n<p>Two  spaces</p>"
    assert clean(html, strip_links=True) == html
    kinds = set()
    build(Clean).clean_turn("assistant", "SELECT  a\nFROM  t;  ", kinds)
    assert kinds == {"code", "whitespace"}


def test_nfc_never_touches_code():
    text = "Caf\u0065\u0301 menu: `name = 'cafe\u0301'`"
    assert clean(text) == "Caf\u00e9 menu: `name = 'cafe\u0301'`"


def test_a_code_source_keeps_its_answers_verbatim():
    step = build(Clean, strip_links=True)
    step.ctx.source_kinds = {"code": "code", "chat": "text"}
    answer = "Sure  thing, see https://example.com  now"  # prose, but from a code source
    ds = pairs_dataset([("Q  one", answer), ("Q  two", answer)], source=["code", "chat"])
    out = apply_step(step, ds)
    assert [m["content"] for m in out["messages"][0]] == ["Q one", answer]  # the prompt is still cleaned
    assert [m["content"] for m in out["messages"][1]] == ["Q two", "Sure thing, see now"]
    assert step.ctx.counts["rows_with_code_turns"] == 1


def test_the_program_text_of_every_real_code_row_survives(shared_data):
    """Code Alpaca: with the lima_style settings, every line of code (and every URL in quotes) of every
    answer comes out as it went in, but for trailing spaces; with `kind: code` every answer does."""
    import json
    import re

    from curate.steps.clean.code import looks_like_code

    rows = json.loads((shared_data / "code_alpaca_2k.json").read_text())
    step = build(Clean, strip_links=True, drop_article_refs=True)
    quoted = re.compile(r"""['"`](?:https?://|www\.)[^'"`\s]+""")
    changed = 0
    for r in rows:
        before = r["output"]
        after = step.clean_turn("assistant", before)
        kept = {line.strip() for line in after.split("\n")}
        for line in before.split("\n"):
            if looks_like_code(line):
                assert line.strip() in kept, (line, after)
        assert quoted.findall(before) == quoted.findall(after)
        assert step.clean_turn("assistant", before, code_source=True) == \
            "\n".join(line.rstrip() for line in before.split("\n")).strip("\n").rstrip()
        changed += after.split() != before.split()
    assert changed == 0  # beyond spacing, nothing of a code answer changes


def test_the_manifest_counts_changes_by_kind_and_inspect_shows_them(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from curate.cli import app

    monkeypatch.chdir(tmp_path)
    rows = [{"instruction": "Say  hi", "output": "Hi  there. As an AI language model, I do not have feelings, but I am glad you wrote today!"},
            {"instruction": "Code?", "output": "x  =  1\ny  =  2"},
            {"instruction": "Link?", "output": "Read https://example.com today, it is good."}]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "r.yaml").write_text("name: c\nsources:\n  s: {path: d.jsonl, license: mit}\n"
                                     "steps:\n  - clean: {strip_links: true}\noutputs: {dir: out}\n")
    runner = CliRunner()
    assert runner.invoke(app, ["run", "r.yaml"]).exit_code == 0
    notes = json.loads((tmp_path / "out" / "manifest.json").read_text())["steps"][0]["notes"]
    assert notes["changed_by"] == {"whitespace": 1, "boilerplate": 1, "links": 1}
    assert notes["rows_with_code_turns"] == 1 and notes["rows_changed"] == 2
    res = runner.invoke(app, ["inspect", "out", "--changed", "--json"])
    changes = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert [c["turns"][-1]["after"] for c in changes] == ["Hi there. I am glad you wrote today!", "Read today, it is good."]


def test_the_tidy_shortcut_never_skips_a_turn_the_line_loop_would_change(shared_data):
    """`_tidy` lets most turns skip the line loop: on every turn it passes, the loop must leave the turn as it
    is. Tried on random turns made of every kind of whitespace (each character str.isspace() knows), fences,
    inline code and words, and on the real pool's turns."""
    import json
    import random
    import sys

    from curate.steps.clean.text import _tidy, _tidy_lines

    spaces = [c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()]
    pieces = spaces + ["word", "é", "```", "~~~", "`x`", "x  =  1", "\n", "\n\n", ".", "    "]
    rng = random.Random(0)
    turns = ["".join(rng.choices(pieces, k=rng.randint(0, 12))) for _ in range(20_000)]
    turns += ["a" + c + "\nb" for c in spaces] + ["a\nb" + c for c in spaces] + [c + "a" for c in spaces]
    rows = json.loads((shared_data / "code_alpaca_2k.json").read_text())
    turns += [r[k] for r in rows for k in ("instruction", "output")]
    passed = [t for t in turns if _tidy(t)]
    assert len(passed) > 1000  # the shortcut is taken
    assert [t for t in passed if _tidy_lines(t) != t] == []
    assert _tidy("a\u3000\nb") is False and _tidy("a\x0c\nb") is False and _tidy("one\n\ntwo") is True


def test_symbols_are_counted_alike_on_ascii_and_other_text():
    from curate.steps.clean.code import _SYMBOL, _symbols

    for text in ["".join(map(chr, range(128))), "a_b = c[1] -> {d}", "naïve — “quoted” ½", "x\x1c\x1fy", ""]:
        assert _symbols(text) == len(_SYMBOL.findall(text)), text


def test_the_arrow_road_finds_the_same_code_as_is_code(shared_data):
    """clean asks whether a turn is code for all the batch's ASCII turns at once, in Arrow (code.code_turns):
    the same answers as is_code / looks_like_code, on the real turns and on random lines built from code
    fragments, ASCII's odd whitespace (\\x0b, \\x1c...), links and non-ASCII text (left to is_code)."""
    import random
    import string

    import numpy as np
    import pyarrow as pa

    from curate.specs.source import Source
    from curate.sources.load import load_source
    from curate.steps.clean.code import code_lines, code_turns, is_code, looks_like_code

    texts = []
    for name in ("alpaca_gpt4_en_demo_999.json", "code_alpaca_2k.json", "lima_train.json"):
        texts += [m["content"] for r in load_source("x", Source(path=str(shared_data / name))).rows for m in r["messages"]]
    rng = random.Random(0)
    pieces = ["def f(x):", "x = 1", "x += 2", "a == b", "std::", "foo(bar)", "  ", "\t", "\x1c", "\x0b", "\x0c", "\r",
              "{", "}", ";", "<div>", "</p>", "key: v,", "'k': 1,", "=", "(", ")", "SELECT *", "$ ls", "#!", "g++",
              "console.log", "http://a.b/c?d=1", "www.x.org", "[t](u)", "](", "->", "=>", "::", "é", "中", "\u00a0",
              "_", "'", '"', ":", ",", ".", "Some prose here", "return", "if", "\n", "\n\n", "", " ", "/* */", "|"]
    for _ in range(3000):
        texts.append("".join(rng.choice(pieces + list(string.printable)) for _ in range(rng.randrange(0, 40))))
    array = pa.array(texts + [None])
    for threshold in (0.5, 0.3, 1.0, 0.01):
        got = code_turns(array, threshold)
        assert got[-1] is None
        for text, answer in zip(texts, got):
            if text.isascii():
                assert answer == is_code(text, threshold), (threshold, text[:200])
            else:
                assert answer is None
    lines = [line for text in texts if text.isascii() for line in text.split("\n")]
    nonblank, code = code_lines(pa.array(lines))
    assert nonblank.tolist() == [bool(line.strip()) for line in lines]
    assert code.tolist() == [looks_like_code(line) for line in lines]
    assert sum(code) > 1000 and sum(~code & nonblank) > 1000  # both answers are there to be got wrong
    assert code_turns(pa.array(["x = 1"] * 3, pa.large_string()), 0.5) == [True] * 3
    assert code_turns(pa.array([], pa.string()), 0.5) == [] and np.all(code_lines(pa.array([""]))[0] == [False])
