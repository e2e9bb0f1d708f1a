"""The evaluation suite: multiple choice by log-likelihood (hand-computed on a model with a fixed next-token
distribution), GSM8K number extraction, ROUGE/BLEU, assistant-token loss, presets, the base-model cache."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from tests.model_fixtures import lm_dir, model_env, needs, tok  # noqa: E402,F401 - fixtures

needs("torch", "rouge_score", "sacrebleu")

import torch  # noqa: E402

from curate.errors import CurateError  # noqa: E402
from curate.evals.data import PromptFormat, load_task_rows  # noqa: E402
from curate.evals.gsm8k import extract_number, numbers_match  # noqa: E402
from curate.evals.multiple_choice import (_continuation_scores, _next_token_scores, _single_token_ids,  # noqa: E402
                                          evaluate_multiple_choice, rank_metrics)
from curate.specs.evals import EvalSource, EvalSpec, EvalTask  # noqa: E402


class FixedLM(torch.nn.Module):
    """A 'language model' whose every position predicts the same distribution: softmax(bias)."""

    def __init__(self, bias):
        super().__init__()
        self.bias = torch.nn.Parameter(bias)

    def forward(self, input_ids, attention_mask=None, use_cache=False, **kw):
        b, t = input_ids.shape
        return SimpleNamespace(logits=self.bias.expand(b, t, -1))


QUESTIONS = [  # (question, options, answer letter)
    ("what sat on the mat", ["dog", "cat", "bird", "sun"], "B"),
    ("what ran to the park", ["cat", "sun", "dog", "rain"], "C"),
    ("what sang songs", ["birds", "water", "mat", "park"], "A"),
    ("what falls from the sky", ["park", "mat", "sun", "rain"], "D"),
    ("how many", ["one", "two", "three", "four"], "B"),
]


def write_arc(path, questions=QUESTIONS):
    path.write_text(json.dumps([{"id": f"q{i}", "question": q, "choices": {"text": o, "label": list("ABCD")}, "answerKey": a}
                                for i, (q, o, a) in enumerate(questions)]))
    return path


def mc_rows(tmp_path, questions=QUESTIONS):
    task = EvalTask(kind="multiple_choice", source={"path": str(write_arc(tmp_path / "arc.json", questions))}, n=None)
    return load_task_rows("arc", task, 0)


# -- multiple choice ------------------------------------------------------------------------------------


def test_rank_metrics_by_hand():
    scores = [[0.1, 0.9, 0.5, 0.0], [0.1, 0.9, 0.5, 0.0], [0.1, 0.9, 0.5, 0.0], [0.1, 0.9, 0.5, 0.0], [1, 1, 0, 0]]
    answers = [1, 2, 0, 3, 1]  # ranks 1, 2, 3, 4 and (tie -> earlier option first) 2
    out = rank_metrics(scores, answers)
    assert out["accuracy"] == pytest.approx(1 / 5)
    assert out["map@3"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 0 + 1 / 2) / 5)


def test_multiple_choice_on_a_model_with_a_known_preference(tmp_path, tok):
    rows = mc_rows(tmp_path)
    vocab = len(tok)
    bias = torch.full((vocab,), -10.0)
    letter = {c: tok(c, add_special_tokens=False)["input_ids"][0] for c in "ABCD"}
    for c, v in zip("BCAD", (3.0, 2.0, 1.0, 0.0)):  # B > C > A > D for every question
        bias[letter[c]] = v
    fmt = PromptFormat("chatml", tok)
    out = evaluate_multiple_choice(FixedLM(bias), tok, fmt, rows, scoring="letter", batch_size=2)
    # answers B, C, A, D, B rank 1, 2, 3, 4, 1
    assert out["n"] == 5 and out["method"].endswith("(one token)")
    assert out["accuracy"] == pytest.approx(2 / 5)
    assert out["map@3"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 0 + 1) / 5)
    assert out["chance"] == pytest.approx(0.25)


def test_text_scoring_uses_the_mean_log_probability_per_token(tmp_path, tok):
    # options of one and of several tokens: the mean per token decides, so length is not penalised
    questions = [("pick", ["cat", "cat cat cat", "dog", "sun"], "B")]
    rows = mc_rows(tmp_path, questions)
    bias = torch.zeros(len(tok))
    out = evaluate_multiple_choice(FixedLM(bias), tok, PromptFormat("chatml", tok), rows, scoring="text")
    assert out["n"] == 1 and "mean log-probability" in out["method"]
    scores = _continuation_scores(FixedLM(bias), tok, ["p"], [["cat", "cat cat cat"]], 4, mean=True)
    assert scores[0][0] == pytest.approx(scores[0][1]) == pytest.approx(-math.log(len(tok)), rel=1e-5)


def test_fast_and_full_letter_scores_agree_on_a_real_model(tmp_path, lm_dir, tok):
    from curate.models import load_causal_lm

    model, _ = load_causal_lm(str(lm_dir))
    rows = mc_rows(tmp_path)
    fmt = PromptFormat("model", tok)
    prompts = [fmt.prompt(r["messages"][:1]) for r in rows]
    options = [list("ABCD")] * len(rows)
    single = _single_token_ids(tok, prompts, options)
    assert single is not None
    fast = _next_token_scores(model, tok, single, 3)
    full = _continuation_scores(model, tok, prompts, options, 5, mean=False)
    for a, b in zip(fast, full):
        assert a == pytest.approx(b, abs=1e-4)


# -- gsm8k, generation, loss ----------------------------------------------------------------------------


@pytest.mark.parametrize("text,number", [
    ("so she has 5 + 3 = 8 apples. #### 8", "8"),
    ("The answer is 1,234.", "1234"),
    ("It costs $18.00 in total", "18"),
    ("x = -3.50", "-3.5"),
    ("#### 72\nand 5 more words 9", "72"),
    ("first 12 then 7", "7"),
    ("no number here", None),
])
def test_gsm8k_final_number(text, number):
    assert extract_number(text) == number


def test_gsm8k_numbers_match():
    assert numbers_match("18", "18.0") and numbers_match("1,000", "1000") and not numbers_match("7", "8")
    assert not numbers_match(None, "8")


def test_text_metrics():
    from curate.evals.generation import text_metrics

    same = text_metrics(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert same["rougeL"] == pytest.approx(1.0) and same["bleu"] == pytest.approx(100.0)
    other = text_metrics(["a dog"], ["the cat sat on the mat"])
    assert other["rougeL"] == 0 and other["bleu"] < 5


def test_assistant_loss_is_the_token_mean(lm_dir, tok):
    from curate.evals.loss import assistant_loss
    from curate.models import load_causal_lm
    from curate.templates.render import render
    from curate.encoding import PaddingCollator, encode_rows

    model, _ = load_causal_lm(str(lm_dir))
    rows = []
    for q, a in [("what did the cat do", "the cat sat on a mat and the dog ran to the park"), ("count", "one two")]:
        text, spans = render([{"role": "user", "content": q}, {"role": "assistant", "content": a}], "chatml")
        rows.append({"text": text, "assistant_spans": [list(s) for s in spans]})
    out = assistant_loss(model, tok, rows, batch_size=1)
    enc = encode_rows(tok, rows, 1024)
    with torch.no_grad():  # one padded batch: transformers' loss is the mean over all label tokens
        expected = model(**PaddingCollator(pad_id=tok.pad_token_id)(enc), use_cache=False).loss
    assert out["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert out["rows"] == 2 and out["tokens"] == sum(sum(1 for x in e["labels"][1:] if x != -100) for e in enc)


# -- spec and suite -------------------------------------------------------------------------------------


def test_presets_and_errors():
    from curate.specs.source import Source

    spec = EvalSpec.model_validate({"tasks": ["arc_easy", "mmlu"]})
    assert spec.tasks["arc_easy"].source.hub == "allenai/ai2_arc" and spec.tasks["arc_easy"].source.split == "validation"
    assert spec.tasks["arc_easy"].role == "domain" and spec.tasks["mmlu"].role == "general"
    local = EvalSpec.model_validate({"tasks": {"mmlu": {"n": 5, "source": {"path": "m/*.csv"}}}}).tasks["mmlu"]
    assert local.source.hub is None and local.source.path == "m/*.csv" and local.source.csv_columns[0] == "question"
    assert local.source.format == "multiple_choice" and local.n == 5
    with pytest.raises(ValueError, match="unknown preset 'arc_esay'.*did you mean 'arc_easy'"):
        EvalSpec.model_validate({"tasks": {"x": {"preset": "arc_esay"}}})
    with pytest.raises(ValueError, match="source"):
        EvalSpec.model_validate({"tasks": {"mine": {"kind": "loss"}}})
    with pytest.raises(ValueError, match="template"):
        EvalSpec.model_validate({"template": "chatlm"})
    with pytest.raises(ValueError, match="domain_metric"):
        EvalSpec.model_validate({"domain_metric": "nope.accuracy"})
    # the eval source mirrors the recipe source, field for field
    assert set(EvalSource.model_fields) <= set(Source.model_fields)
    assert EvalSource(path="x.json").to_source().path == "x.json"


def test_task_rows_are_a_seeded_sample_and_checked(tmp_path):
    write_arc(tmp_path / "arc.json", QUESTIONS * 4)
    task = EvalTask(kind="multiple_choice", source={"path": str(tmp_path / "arc.json")}, n=6)
    a, b = load_task_rows("arc", task, 0), load_task_rows("arc", task, 0)
    assert len(a) == 6 and [r["id"] for r in a] == [r["id"] for r in b]
    assert isinstance(a[0]["meta"], dict) and "answer_index" in a[0]["meta"]
    (tmp_path / "plain.jsonl").write_text(json.dumps({"instruction": "hi", "output": "there"}) + "\n")
    with pytest.raises(CurateError, match="evals.tasks.bad: multiple-choice rows need choices"):
        load_task_rows("bad", EvalTask(kind="multiple_choice", source={"path": str(tmp_path / "plain.jsonl")}), 0)
    with pytest.raises(CurateError, match="evals.tasks.gone"):
        load_task_rows("gone", EvalTask(kind="loss", source={"path": str(tmp_path / "missing.jsonl")}), 0)


def test_suite_runs_every_kind_and_caches_the_base_model(tmp_path, lm_dir):
    from curate.evals.suite import LossSet, Suite
    from curate.templates.render import render

    write_arc(tmp_path / "arc.json")
    with open(tmp_path / "gsm.jsonl", "w") as f:
        for q, a in [("one plus one", "1 + 1 = 2\n#### 2"), ("two times three", "2 * 3 = 6\n#### 6")]:
            f.write(json.dumps({"question": q, "answer": a}) + "\n")
    with open(tmp_path / "gen.jsonl", "w") as f:
        for q, a in [("what did the cat do", "the cat sat on a mat"), ("count", "one two three")]:
            f.write(json.dumps({"instruction": q, "output": a}) + "\n")
    spec = EvalSpec.model_validate({
        "tasks": {
            "arc": {"kind": "multiple_choice", "role": "domain", "source": {"path": str(tmp_path / "arc.json")}},
            "gsm8k": {"source": {"path": str(tmp_path / "gsm.jsonl")}, "max_new_tokens": 4},
            "gen": {"kind": "generation", "source": {"path": str(tmp_path / "gen.jsonl")}, "max_new_tokens": 4},
            "held": {"kind": "loss", "source": {"path": str(tmp_path / "gen.jsonl")}},
        },
        "batch_size": 2,
    })
    text, spans = render([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "the dog ran"}], "chatml")
    suite = Suite(spec, {"pool": LossSet([{"text": text, "assistant_spans": [list(s) for s in spans]}], "domain")})
    first = suite.run_base(str(lm_dir), cache_dir=tmp_path / "cache")
    assert first["cached"] is False and first["template"] == "model chat template"
    assert set(first["metrics"]) == {"arc.accuracy", "arc.map@3", "gsm8k.exact_match", "gen.rougeL", "gen.bleu",
                                     "held.loss", "pool.loss"}
    assert 0 <= first["metrics"]["arc.accuracy"] <= 1 and first["metrics"]["held.loss"] > 0
    assert first["tasks"]["gsm8k"]["n"] == 2 and len(first["tasks"]["gen"]["examples"]) == 2
    again = suite.run_base(str(lm_dir), cache_dir=tmp_path / "cache")
    assert again["cached"] is True and again["metrics"] == first["metrics"]
    info = suite.metric_info()
    assert info["held.loss"]["higher_is_better"] is False and info["arc.map@3"]["primary"] is False
    # gain and forgetting: signed so that positive is better
    better = dict(first["metrics"], **{"arc.accuracy": first["metrics"]["arc.accuracy"] + 0.2,
                                       "held.loss": first["metrics"]["held.loss"] - 0.5})
    s = suite.scores(better, first["metrics"])
    assert s["changes"]["arc.accuracy"] == pytest.approx(0.2) and s["changes"]["held.loss"] == pytest.approx(0.5)
    # domain: arc (+0.2), gsm8k (0), pool loss (0); general: gen rougeL (0), held loss (+0.5)
    assert s["domain_gain"] == pytest.approx(0.2 / 3, abs=1e-6) and s["general_retention"] == pytest.approx(0.25)
    assert s["forgetting"] == pytest.approx(-0.25)
