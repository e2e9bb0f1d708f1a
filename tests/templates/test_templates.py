"""Chat templates: exact built-in renderings, assistant spans, tokenizer and user templates, the sandbox."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from curate.errors import CurateError
from curate.templates import Templater, TemplateSpec, builtin_formats, render
from tests.helpers import pairs_dataset

CONVO = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
]

EXPECTED = {
    "chatml": (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n",
        ["Hello!<|im_end|>", "4<|im_end|>"],
    ),
    "llama-3": (
        "<|begin_of_text|>"
        "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>",
        ["Hello!<|eot_id|>", "4<|eot_id|>"],
    ),
    "alpaca": (
        "<s>You are terse.\n\n### Instruction:\nHi\n\n### Response:\nHello!</s>"
        "\n\n### Instruction:\n2+2?\n\n### Response:\n4</s>",
        ["Hello!</s>", "4</s>"],
    ),
    "vicuna": (
        "<s>You are terse. USER: Hi ASSISTANT: Hello!</s>USER: 2+2? ASSISTANT: 4</s>",
        ["Hello!</s>", "4</s>"],
    ),
}

CHATML_JINJA = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def covered(text, spans):
    return [text[s:e] for s, e in spans]


def test_builtin_formats_listed():
    assert builtin_formats() == ["alpaca", "chatml", "llama-3", "vicuna"]


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_builtin_exact_text_and_spans(fmt):
    text, spans = render(CONVO, fmt)
    want_text, want_spans = EXPECTED[fmt]
    assert text == want_text
    assert covered(text, spans) == want_spans
    # Prompt = everything outside the spans; it holds every non-assistant message.
    prompt = text[: spans[0][0]] + text[spans[0][1] : spans[1][0]] + text[spans[1][1] :]
    for m in CONVO:
        if m["role"] != "assistant":
            assert m["content"] in prompt


def test_no_system_message_uses_standard_preamble():
    text, _ = render(CONVO[1:3], "alpaca")
    assert text.startswith("<s>Below is an instruction that describes a task.")
    text, _ = render(CONVO[1:3], "vicuna")
    assert text.startswith("<s>A chat between a curious user and an artificial intelligence assistant.")
    text, _ = render(CONVO[1:3], "chatml")
    assert text.startswith("<|im_start|>user\nHi")


def test_add_bos_eos_off():
    text, spans = render(CONVO, {"format": "alpaca", "add_bos": False, "add_eos": False})
    assert text == (
        "You are terse.\n\n### Instruction:\nHi\n\n### Response:\nHello!"
        "\n\n### Instruction:\n2+2?\n\n### Response:\n4"
    )
    assert covered(text, spans) == ["Hello!", "4"]
    text, _ = render(CONVO, {"format": "llama-3", "add_bos": False})
    assert text.startswith("<|start_header_id|>system")
    # ChatML's end of turn is the format itself, not an optional EOS.
    text, spans = render(CONVO, {"format": "chatml", "add_eos": False})
    assert covered(text, spans) == ["Hello!<|im_end|>", "4<|im_end|>"]


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_multi_turn_every_assistant_turn(fmt):
    msgs = [{"role": "user", "content": f"question {i}"} if i % 2 == 0 else {"role": "assistant", "content": f"answer {i}"} for i in range(8)]
    text, spans = render(msgs, fmt)
    assert len(spans) == 4
    assert [t.split("<")[0] for t in covered(text, spans)] == ["answer 1", "answer 3", "answer 5", "answer 7"]
    assert all(a < b for (_, a), (b, _) in zip(spans, spans[1:]))


def test_reply_repeated_in_prompt_is_not_mistaken_for_the_reply():
    msgs = [{"role": "user", "content": "Say 4. Just 4."}, {"role": "assistant", "content": "4"}]
    for fmt in builtin_formats():
        text, spans = render(msgs, fmt)
        (s, e), = spans
        assert text[s:e].startswith("4") and s > text.index("Just 4") + len("Just 4")


def test_empty_reply_span_is_the_end_marker():
    text, spans = render([{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}], "chatml")
    assert covered(text, spans) == ["<|im_end|>"]


def test_templater_apply_adds_columns():
    ds = pairs_dataset([("What is 1+1?", "2"), CONVO])
    ds = Templater("llama-3").apply(ds)
    assert {"text", "assistant_spans"} <= set(ds.column_names)
    row = ds[1]
    assert covered(row["text"], row["assistant_spans"]) == EXPECTED["llama-3"][1]
    assert ds[0]["assistant_spans"] == [[len(ds[0]["text"]) - len("2<|eot_id|>"), len(ds[0]["text"])]]
    again = Templater("chatml").apply(ds)  # re-templating replaces the columns
    assert again[1]["text"] == EXPECTED["chatml"][0]


def test_templater_apply_no_assistant_rows():
    ds = pairs_dataset([[{"role": "user", "content": "only a prompt"}]])
    ds = Templater().apply(ds)
    assert ds[0]["assistant_spans"] == []


def tiny_tokenizer(path, template):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "<|im_start|>": 1, "<|im_end|>": 2, "<|endoftext|>": 3, "hi": 4}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="[UNK]", bos_token="<|endoftext|>", eos_token="<|im_end|>"
    )
    tok.chat_template = template
    tok.save_pretrained(str(path))
    return tok


def test_tokenizer_chat_template(tmp_path):
    tok = tiny_tokenizer(tmp_path / "tok", CHATML_JINJA)
    templater = Templater({"tokenizer": str(tmp_path / "tok")})
    assert templater.spec.source == "tokenizer"
    text, spans = templater.render(CONVO)
    assert text == EXPECTED["chatml"][0]
    assert text == tok.apply_chat_template(CONVO, tokenize=False)
    assert covered(text, spans) == EXPECTED["chatml"][1]
    # A relative path resolves against base_dir; format: tokenizer is accepted explicitly.
    text2, _ = render(CONVO, {"format": "tokenizer", "tokenizer": "tok"}, base_dir=tmp_path)
    assert text2 == text


def test_tokenizer_template_that_trims_and_uses_eos(tmp_path):
    # Llama-2 style: trims content and ends replies with " " + eos_token.
    template = (
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] | trim + ' [/INST]' }}"
        "{% else %}{{ ' ' + m['content'] | trim + ' ' + eos_token }}{% endif %}{% endfor %}"
    )
    tiny_tokenizer(tmp_path / "tok", template)
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  hello there \n"}]
    text, spans = render(msgs, {"tokenizer": str(tmp_path / "tok")})
    assert text == "<|endoftext|>[INST] hi [/INST] hello there <|im_end|>"
    assert covered(text, spans) == ["hello there <|im_end|>"]


def test_tokenizer_without_template(tmp_path):
    tiny_tokenizer(tmp_path / "tok", None)
    with pytest.raises(CurateError, match="no chat_template"):
        Templater({"tokenizer": str(tmp_path / "tok")})
    with pytest.raises(CurateError, match="could not load tokenizer"):
        Templater({"tokenizer": str(tmp_path / "missing")})


def test_user_jinja_string_and_file(tmp_path):
    text, spans = render(CONVO, {"jinja": CHATML_JINJA})
    assert (text, covered(text, spans)) == EXPECTED["chatml"]
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "mine.jinja").write_text(
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% if m.role == 'assistant' %}{{ eos_token }}{% endif %}\n{% endfor %}"
    )
    spec = {"format": "jinja", "jinja_file": "t/mine.jinja", "eos_token": "<END>"}
    text, spans = render(CONVO, spec, base_dir=tmp_path)
    # trim_blocks (as in transformers) eats the newline after a block tag.
    assert text == "<system>You are terse.<user>Hi<assistant>Hello!<END><user>2+2?<assistant>4<END>"
    assert covered(text, spans) == ["Hello!<END>", "4<END>"]
    with pytest.raises(CurateError, match="no template file"):
        Templater({"jinja_file": "nope.jinja"}, base_dir=tmp_path)
    with pytest.raises(CurateError, match="uses eos_token but none is set"):
        Templater({"jinja_file": "t/mine.jinja"}, base_dir=tmp_path)
    Templater({"jinja_file": "t/mine.jinja", "add_eos": False}, base_dir=tmp_path)


def test_custom_end_marker_joins_span():
    jinja = "{% for m in messages %}{{ m.role }}: {{ m.content }}{% if m.role == 'assistant' %} <STOP>{% endif %}\n{% endfor %}"
    text, spans = render(CONVO, {"jinja": jinja, "end_markers": ["<STOP>"]})
    assert covered(text, spans) == ["Hello! <STOP>", "4 <STOP>"]


def test_template_that_alters_content_is_an_error():
    jinja = "{% for m in messages %}{{ m.role }}: {{ m.content | upper }}\n{% endfor %}"
    with pytest.raises(CurateError, match="assistant turn 1 of row 'r1'"):
        render(CONVO, {"jinja": jinja}, row="r1")


@pytest.mark.parametrize(
    "jinja",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ messages.__class__ }}",
        "{% set ns = namespace(_x=1) %}",
        "{{ messages.append(1) }}",
    ],
)
def test_sandbox_blocks_unsafe_access(jinja):
    with pytest.raises(CurateError, match="sandbox forbids"):
        render(CONVO, {"jinja": jinja})


def test_template_errors_are_curate_errors():
    with pytest.raises(CurateError, match="does not parse"):
        Templater({"jinja": "{% for m in messages %}"})
    with pytest.raises(CurateError, match="boom"):
        render(CONVO, {"jinja": "{{ raise_exception('boom') }}"})
    # Built-ins without a system slot refuse a system message mid-conversation.
    with pytest.raises(CurateError, match="alpaca has no place for a system"):
        render(CONVO[1:3] + [CONVO[0]], "alpaca")


def test_spec_choices():
    assert TemplateSpec().source == "builtin" and TemplateSpec().format == "chatml"
    assert TemplateSpec(jinja="x").format == "jinja"
    with pytest.raises(ValidationError, match="did you mean 'llama-3'"):
        TemplateSpec(format="llama3")
    with pytest.raises(ValidationError, match="both name a template"):
        TemplateSpec(format="alpaca", tokenizer="x")
    with pytest.raises(ValidationError, match="one template source"):
        TemplateSpec(jinja="x", jinja_file="y")
    with pytest.raises(ValidationError, match="needs `tokenizer`"):
        TemplateSpec(format="tokenizer")
    with pytest.raises(ValidationError):
        TemplateSpec(fromat="chatml")
    with pytest.raises(CurateError, match="did you mean 'vicuna'"):
        Templater("vicuna2")


def test_describe_for_manifest():
    d = Templater("llama-3").describe()
    assert d["source"] == "builtin" and d["name"] == "llama-3" and d["bos_token"] == "<|begin_of_text|>"
    assert len(d["template_sha256"]) == 64
