"""`kind: lm_eval`: lm-evaluation-harness as an eval backend, offline, on a tiny random Llama built here.

The harness and curate's own multiple-choice scorer agree item by item on the same questions and model; the
shipped task YAMLs read the local copies of ARC-Easy, MMLU and GSM8K; names and files that do not exist are
errors naming the field."""

from __future__ import annotations

import json

import pytest

from tests.model_fixtures import lm_dir, model_env, needs, tok  # noqa: E402,F401 - fixtures

needs("torch", "lm_eval")

from curate.errors import CurateError  # noqa: E402
from curate.specs.evals import EvalSpec  # noqa: E402
from curate.evals.suite import Suite  # noqa: E402

QUESTIONS = [
    ("what sat on the mat", ["dog", "cat", "bird", "sun"], "B"),
    ("what ran to the park", ["cat", "sun", "dog", "rain"], "C"),
    ("what sang songs", ["birds", "water", "mat", "park"], "A"),
    ("what falls from the sky", ["park", "mat", "sun", "rain"], "D"),
    ("how many", ["one", "two", "three", "four"], "B"),
    ("which is wet", ["water", "sun", "mat"], "A"),
]

# curate's multiple_choice source format as an lm-eval task: the same user turn (question, lettered options,
# the instruction), the option letters as the choices, scored by log-likelihood after the chat template
LETTER_TASK = """
task: letters
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {path}
output_type: multiple_choice
validation_split: validation
doc_to_text: "{{{{question}}}}\\n\\n{{% for t in choices.text %}}{{{{ 'ABCDEFGHIJ'[loop.index0] }}}}. {{{{ t }}}}{{% if not loop.last %}}\\n{{% endif %}}{{% endfor %}}\\n\\nAnswer with the letter of the correct option."
doc_to_target: "{{{{ choices.label.index(answerKey) }}}}"
doc_to_choice: "{{{{ choices.label }}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def write_arc(path):
    path.write_text(json.dumps([{"id": f"q{i}", "question": q, "choices": {"text": o, "label": list("ABCD"[:len(o)])},
                                 "answerKey": a} for i, (q, o, a) in enumerate(QUESTIONS)]))
    return path


def test_lm_eval_and_curates_scorer_give_the_same_accuracy_on_the_same_items(tmp_path, lm_dir):
    from curate.models import load_causal_lm

    arc = write_arc(tmp_path / "arc.json")
    (tmp_path / "letters.yaml").write_text(LETTER_TASK.format(path=arc))
    spec = EvalSpec.model_validate({"batch_size": 4, "tasks": {
        "ours": {"kind": "multiple_choice", "n": None, "source": {"path": str(arc)}},
        "harness": {"kind": "lm_eval", "tasks": [str(tmp_path / "letters.yaml")], "n": None},
    }})
    suite = Suite(spec)
    info = suite.metric_info()
    assert info["harness.acc"] == {"task": "harness", "kind": "lm_eval", "role": "general", "primary": True,
                                   "higher_is_better": True}
    assert info["harness.map@3"]["primary"] is False
    model, tokenizer = load_causal_lm(str(lm_dir))
    out = suite.run(model, tokenizer)
    m = out["metrics"]
    assert m["harness.acc"] == m["ours.accuracy"] and m["harness.map@3"] == pytest.approx(m["ours.map@3"], abs=1e-6)
    # item by item: question i is doc i in both
    ours, theirs = out["items"]["ours.accuracy"], out["items"]["harness.acc"]
    assert len(theirs["values"]) == len(QUESTIONS) and theirs["ids"][0].endswith(":0")
    assert theirs["values"] == ours["values"]
    assert out["items"]["harness.map@3"]["values"] == pytest.approx(out["items"]["ours.map@3"]["values"])
    assert out["tasks"]["harness"]["lm_eval"]["chat_template"] is True
    # a seeded sample of n documents: the same documents for every model and run
    small = Suite(EvalSpec.model_validate({"tasks": {"h": {"kind": "lm_eval", "n": 3, "tasks": [str(tmp_path / "letters.yaml")]}}}))
    a, b = small.run(model, tokenizer), small.run(model, tokenizer)
    assert len(a["items"]["h.acc"]["ids"]) == 3 and a["items"] == b["items"]
    first = Suite(EvalSpec.model_validate({"tasks": {"h": {"kind": "lm_eval", "limit": 2, "tasks": [str(tmp_path / "letters.yaml")]}}}))
    assert first.run(model, tokenizer)["items"]["h.acc"]["ids"] == ["letters:0", "letters:1"]
    # a tokenizer without a chat template (a base model): the plain prompts, and the results say so
    tokenizer.chat_template = None
    plain = first.run(model, tokenizer)["tasks"]["h"]
    assert plain["lm_eval"]["chat_template"] is False and "no chat template" in plain["note"]


def test_shipped_tasks_read_the_local_arc_mmlu_and_gsm8k(tmp_path, lm_dir, shared_data):
    from curate.evals.harness import shipped_tasks
    from curate.models import load_causal_lm

    assert set(shipped_tasks()) == {"curate_arc_easy", "curate_mmlu", "curate_gsm8k"}
    spec = EvalSpec.model_validate({"batch_size": 8, "seed": 1, "tasks": {
        "arc": {"kind": "lm_eval", "tasks": ["curate_arc_easy"], "n": 5, "data_dir": str(shared_data)},
        "mmlu": {"kind": "lm_eval", "tasks": "curate_mmlu", "limit": 4, "role": "domain", "data_dir": str(shared_data)},
        "gsm8k": {"kind": "lm_eval", "tasks": ["curate_gsm8k"], "n": 2, "num_fewshot": 1, "max_new_tokens": 4,
                  "data_dir": str(shared_data)},
    }})
    suite = Suite(spec)
    assert set(suite.metric_info()) == {"arc.acc", "arc.acc_norm", "arc.map@3", "mmlu.acc", "mmlu.map@3",
                                        "gsm8k.exact_match_strict-match", "gsm8k.exact_match_flexible-extract"}
    docs = {name: len(t.eval_docs) for name, t in suite.harness("arc").leaves().items()}
    assert docs == {"curate_arc_easy": 570}
    assert len(suite.harness("mmlu").leaves()["curate_mmlu"].eval_docs) == 1542
    model, tokenizer = load_causal_lm(str(lm_dir))
    base = suite.run_base(model=model, tokenizer=tokenizer)
    m = base["metrics"]
    assert all(0 <= m[k] <= 1 for k in m)
    assert [len(base["items"][k]["values"]) for k in ("arc.acc", "mmlu.acc", "gsm8k.exact_match_strict-match")] == [5, 4, 2]
    assert m["arc.acc"] == pytest.approx(sum(base["items"]["arc.acc"]["values"]) / 5)
    assert base["tasks"]["gsm8k"]["lm_eval"]["n-shot"] == {"curate_gsm8k": 1}
    assert suite.fingerprint() != Suite(EvalSpec.model_validate({"tasks": {"arc": {
        "kind": "lm_eval", "tasks": ["curate_arc_easy"], "n": 6, "data_dir": str(shared_data)}}})).fingerprint()


def test_lm_eval_errors_name_the_field(tmp_path):
    with pytest.raises(ValueError, match="needs `tasks`"):
        EvalSpec.model_validate({"tasks": {"x": {"kind": "lm_eval"}}})
    with pytest.raises(ValueError, match="limit: only for kind lm_eval"):
        EvalSpec.model_validate({"tasks": {"x": {"kind": "loss", "limit": 3, "source": {"path": "a.jsonl"}}}})
    missing = Suite(EvalSpec.model_validate({"tasks": {"x": {"kind": "lm_eval", "tasks": [str(tmp_path / "nope.yaml")]}}}))
    with pytest.raises(CurateError, match="evals.tasks.x.tasks: no such task file"):
        missing.metric_info()
    unknown = Suite(EvalSpec.model_validate({"tasks": {"x": {"kind": "lm_eval", "tasks": ["arc_eazy"]}}}))
    with pytest.raises(CurateError, match="evals.tasks.x.tasks: lm-eval has no task.*'arc_eazy'.*did you mean 'arc_easy'"):
        unknown.metric_info()
    (tmp_path / "bad.yaml").write_text("task: bad\ndataset_path: json\ndataset_kwargs: {data_files: {validation: gone.json}}\n"
                                       "output_type: multiple_choice\nvalidation_split: validation\n")
    broken = Suite(EvalSpec.model_validate({"tasks": {"x": {"kind": "lm_eval", "tasks": [str(tmp_path / "bad.yaml")]}}}))
    with pytest.raises(CurateError, match="evals.tasks.x.tasks: lm-eval could not load"):
        broken.metric_info()
