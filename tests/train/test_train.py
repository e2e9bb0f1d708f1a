"""`curate train`: the spec, assistant-only labels, packing, schedules, row order, loss falling, outputs, the
staircase detector and the command; on a tiny random Llama built here (nothing is downloaded)."""

from __future__ import annotations

import json
import math
import random

import pytest

from tests.model_fixtures import lm_dir, model_env, needs, tok  # noqa: E402,F401 - fixtures

needs("torch", "peft", "matplotlib")

import torch  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from curate.errors import CurateError  # noqa: E402
from curate.templates.render import render  # noqa: E402
from curate.encoding import IGNORE, PaddingCollator, encode, encode_rows  # noqa: E402
from curate.train.schedules import lr_trace  # noqa: E402
from curate.specs.train import TrainSpec  # noqa: E402
from curate.train.context import split_sections  # noqa: E402
from curate.train.staircase import detect_staircase  # noqa: E402

CONVERSATIONS = [
    [{"role": "user", "content": "what did the cat do"}, {"role": "assistant", "content": "the cat sat on a mat"}],
    [{"role": "system", "content": "be brief"}, {"role": "user", "content": "count please"},
     {"role": "assistant", "content": "one two three"}, {"role": "user", "content": "and then"},
     {"role": "assistant", "content": "four five"}],
    [{"role": "user", "content": "where did the dog run"}, {"role": "assistant", "content": "the dog ran to the park"}],
    [{"role": "user", "content": "what did birds do"}, {"role": "assistant", "content": "birds sang songs about rain"}],
]


def rows_of(conversations, fmt="chatml"):
    out = []
    for i, msgs in enumerate(conversations):
        text, spans = render(msgs, fmt)
        out.append({"id": f"r{i}", "text": text, "assistant_spans": [list(s) for s in spans], "messages": msgs})
    return out


def toy_rows(n=8):
    words = "the cat sat on a mat and the dog ran to the park while birds sang songs about rain sun water".split()
    convs = []
    for i in range(n):
        q = f"question {i}: what happened {words[i % len(words)]}"
        a = " ".join(words[(i + j) % len(words)] for j in range(8))
        convs.append([{"role": "user", "content": q}, {"role": "assistant", "content": a}])
    return rows_of(convs)


def spec(lm_dir, **kw):
    base = dict(model=str(lm_dir), batch_size=4, learning_rate=3e-3, lora={"r": 8, "alpha": 16, "dropout": 0.0},
                val_fraction=0.0, threads=1, save_adapter=False)
    base.update(kw)
    return TrainSpec.model_validate(base)


# -- the spec ------------------------------------------------------------------------------------------


def test_spec_defaults_and_errors_name_the_field():
    s = TrainSpec.model_validate({"model": "org/some-model"})
    assert s.model.name == "org/some-model" and s.schedule == "cosine" and s.packing == "auto"
    assert s.warmup() == 0.03 and TrainSpec(schedule="onecycle").warmup() == 0.3
    raw = {"name": "x", "sources": {}, "train": {"lora": {"alpah": 8}}}
    with pytest.raises(CurateError) as e:
        split_sections(raw, "r.yaml")
    assert "train.lora.alpah: unknown key (did you mean 'alpha'?)" in str(e.value)
    with pytest.raises(CurateError, match="train.schedule"):
        split_sections({"train": {"schedule": "linear"}})
    with pytest.raises(CurateError, match="compare.seeds"):
        split_sections({"compare": {"seeds": [1, 1]}})
    data, t, e, c = split_sections({"name": "x", "train": {"epochs": 2}, "evals": {"tasks": ["arc_easy"]}})
    assert t.epochs == 2 and e.tasks["arc_easy"].kind == "multiple_choice" and c.seeds == [0, 1, 2]
    assert "name" in data


# -- labels and batches ---------------------------------------------------------------------------------


def test_labels_cover_exactly_the_assistant_spans(tok):
    rows = rows_of(CONVERSATIONS)
    encoded = encode(tok, [r["text"] for r in rows], [r["assistant_spans"] for r in rows], max_length=4096)
    for row, enc in zip(rows, encoded):
        trained = [i for i, lab in zip(enc["input_ids"], enc["labels"]) if lab != IGNORE]
        expected = "".join(row["text"][a:b] for a, b in row["assistant_spans"])
        assert tok.decode(trained) == expected
        assert all(lab in (IGNORE, i) for i, lab in zip(enc["input_ids"], enc["labels"]))
        # the prompt (every user turn) is masked
        masked = tok.decode([i for i, lab in zip(enc["input_ids"], enc["labels"]) if lab == IGNORE])
        assert "<|im_start|>user" in masked and "assistant" in masked
    # the multi-turn row trains on both assistant turns, each with its end marker
    two = tok.decode([i for i, lab in zip(encoded[1]["input_ids"], encoded[1]["labels"]) if lab != IGNORE])
    assert two == "one two three<|im_end|>four five<|im_end|>"


def test_truncation_keeps_the_start_and_drops_rows_without_answer(tok):
    from curate.encoding import EncodeStats

    rows = rows_of(CONVERSATIONS[:1])
    n = len(tok(rows[0]["text"], add_special_tokens=False)["input_ids"])
    stats = EncodeStats()
    cut = encode_rows(tok, rows, n - 2, stats)
    assert len(cut[0]["input_ids"]) == n - 2 and stats.truncated == 1 and stats.kept == 1
    stats = EncodeStats()
    assert encode_rows(tok, rows, 4, stats) == [] and stats.dropped_no_answer == 1


def test_padding_free_batch_has_the_same_loss_as_the_padded_one(lm_dir, tok):
    """What training feeds the model: curate's assistant masks, TRL's labels and collator. Padding-free (the rows in
    one sequence, position ids restarting at each row) gives the padded batch's loss: no row attends to another."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from curate.models import load_causal_lm
    from curate.encoding import batch_tokens
    from curate.train.sft import masked as to_trl

    model, _ = load_causal_lm(str(lm_dir))
    enc = encode_rows(tok, rows_of(CONVERSATIONS), 512)
    masked = to_trl(enc)
    assert [m["assistant_masks"] for m in masked] == [[int(x != IGNORE) for x in e["labels"]] for e in enc]
    features = [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in enc]  # what TRL builds from the masks
    padded = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)(features)
    flat = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)(features)
    assert "attention_mask" not in flat and flat["input_ids"].shape[0] == 1
    assert batch_tokens(flat) == batch_tokens(padded) == sum(len(e["input_ids"]) for e in enc)
    assert flat["position_ids"][0].tolist() == [p for e in enc for p in range(len(e["input_ids"]))]
    with torch.no_grad():
        a = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"], labels=padded["labels"],
                  use_cache=False).loss
        b = model(input_ids=flat["input_ids"], position_ids=flat["position_ids"], labels=flat["labels"],
                  use_cache=False).loss
        c = model(input_ids=flat["input_ids"], labels=flat["labels"], use_cache=False).loss  # without the restarts
    assert math.isclose(float(a), float(b), rel_tol=1e-5)
    assert not math.isclose(float(a), float(c), rel_tol=1e-3)  # cross-row attention would change it


# -- schedules ------------------------------------------------------------------------------------------


def test_schedule_shapes():
    per_epoch, epochs = 8, 3
    total = per_epoch * epochs
    cyc = lr_trace("cyclic", total, per_epoch, peak=1e-3, min_ratio=0.1)
    for e in range(epochs):  # each epoch: starts at the bottom, peaks in the middle, comes back down
        ep = cyc[e * per_epoch:(e + 1) * per_epoch]
        assert math.isclose(ep[0], 1e-4) and math.isclose(max(ep), 1e-3)
        top = ep.index(max(ep))
        assert top == per_epoch // 2
        assert all(x < y for x, y in zip(ep[:top], ep[1:top + 1]))
        assert all(x > y for x, y in zip(ep[top:], ep[top + 1:]))
    one = lr_trace("onecycle", total, per_epoch, peak=1e-3, warmup=0.3)
    top = one.index(max(one))
    assert 0 < top < total - 1 and max(one) > 0.99e-3
    assert all(x < y for x, y in zip(one[:top], one[1:top + 1])) and all(x >= y for x, y in zip(one[top:], one[top + 1:]))
    assert one[-1] < 1e-5  # far below the start (peak/25)
    const = lr_trace("constant", total, per_epoch, peak=1e-3)
    assert all(math.isclose(x, 1e-3) for x in const)
    cos = lr_trace("cosine", total, per_epoch, peak=1e-3, warmup=0.125)
    assert cos[0] == 0 and math.isclose(max(cos), 1e-3)
    after = cos[cos.index(max(cos)):]
    assert all(x >= y for x, y in zip(after, after[1:])) and after[-1] < 1e-4


# -- training -------------------------------------------------------------------------------------------


def test_training_lowers_the_loss_logs_epochs_and_keeps_the_order(lm_dir, tmp_path):
    from curate.train.loss_log import read_log
    from curate.train.trainer import train

    rows = toy_rows(8)
    s = spec(lm_dir, epochs=4, schedule="cyclic", reshuffle=False, save_adapter=True, eval_every=4)
    val = toy_rows(10)[8:]
    res = train(rows, s, tmp_path / "run", val_rows=val, record_order=True)
    out = tmp_path / "run"
    for name in ("train.json", "loss.csv", "loss.png", "adapter"):
        assert (out / name).exists(), name
    log = read_log(out / "loss.csv")
    assert [r["kind"] for r in log] == [r["kind"] for r in res.log]
    train_rows = [r for r in log if r["kind"] == "train"]
    assert len(train_rows) == 8 and [r["step"] for r in train_rows] == list(range(1, 9))
    assert [r["step"] for r in log if r["kind"] == "epoch_end"] == [2, 4, 6, 8]
    assert sum(r["loss"] for r in train_rows[-2:]) < sum(r["loss"] for r in train_rows[:2])
    evals = [r for r in log if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [4, 8] and evals[-1]["loss"] < res.summary["results"]["eval_loss_first"] + 1e-9
    # cyclic with 2 steps per epoch: low, high, low, high ...
    lrs = [r["learning_rate"] for r in train_rows]
    assert all(math.isclose(lrs[i], 3e-4) for i in (0, 2, 4, 6)) and all(math.isclose(lrs[i], 3e-3) for i in (1, 3, 5, 7))
    # reshuffle off: the same order every epoch, and every row once per epoch
    epochs = [sum(res.order[2 * e: 2 * e + 2], []) for e in range(4)]
    assert all(ep == epochs[0] for ep in epochs) and sorted(epochs[0]) == list(range(8))
    summary = json.loads((out / "train.json").read_text())
    assert summary["steps"] == 8 and summary["steps_per_epoch"] == 2 and summary["packing"] is False
    assert summary["results"]["tokens"] > 0 and summary["results"]["tokens_per_second"] > 0
    assert summary["staircase"]["boundaries"] and "score" in summary["staircase"]
    assert summary["data"]["train"]["kept"] == 8 and summary["data"]["val_rows"] == 2


def test_reshuffle_on_draws_a_new_order_each_epoch_and_packing_trains(lm_dir, tmp_path):
    from curate.train.trainer import train

    rows = toy_rows(8)
    res = train(rows, spec(lm_dir, epochs=3, batch_size=8, reshuffle=True, packing=True, schedule="constant"),
                tmp_path / "run", record_order=True, keep_model=True)
    assert len(res.order) == 3 and all(sorted(o) == list(range(8)) for o in res.order)
    assert len({tuple(o) for o in res.order}) > 1
    assert res.summary["packing"] is True and res.model is not None and not hasattr(res.model, "peft_config")
    assert res.summary["libraries"]["trl"] and res.summary["fused_loss"] is False  # TRL, the model's own loss on CPU
    lrs = [r["learning_rate"] for r in res.log if r["kind"] == "train"]
    assert all(math.isclose(x, 3e-3) for x in lrs)


def test_fused_and_plain_loss_train_alike(lm_dir, tmp_path):
    """TRL's fused LM head (the CUDA default) and the model's own cross-entropy give the same training losses."""
    from curate.train.trainer import train

    logs = []
    for fused in (True, False):
        res = train(toy_rows(8), spec(lm_dir, max_steps=3, fused_loss=fused), tmp_path / f"run-{fused}")
        assert res.summary["fused_loss"] is fused
        logs.append([r["loss"] for r in res.log if r["kind"] == "train"])
    assert logs[0] == pytest.approx(logs[1], rel=1e-4)


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")  # peft reading transformers
def test_adapter_and_merged_model_reload_to_the_trained_model(lm_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from curate.train.trainer import train

    rows = toy_rows(8)
    res = train(rows, spec(lm_dir, max_steps=3, save_adapter=True, save_merged=True), tmp_path / "run", keep_model=True)
    out = tmp_path / "run"
    assert res.merged_dir == out / "merged" and res.adapter_dir == out / "adapter"
    ids = torch.tensor([[5, 17, 42, 9, 100, 3]])
    with torch.no_grad():
        trained = res.model(ids).logits
        base = AutoModelForCausalLM.from_pretrained(lm_dir)(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(out / "merged")(ids).logits
        adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(lm_dir), out / "adapter")(ids).logits
    assert not torch.allclose(trained, base, atol=1e-4)  # training changed the model
    assert torch.allclose(merged, trained, atol=1e-4) and torch.allclose(adapted, trained, atol=1e-4)
    assert {"merged/", "adapter/"} <= set(res.summary["files"])


def test_output_folder_must_be_a_training_folder(lm_dir, tmp_path):
    from curate.train.trainer import train

    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(CurateError, match="not a training folder"):
        train(toy_rows(4), spec(lm_dir, max_steps=1), tmp_path / "busy")
    with pytest.raises(CurateError, match="text"):
        train([{"messages": []}], spec(lm_dir, max_steps=1), tmp_path / "x")


# -- the staircase detector -----------------------------------------------------------------------------


def _curve(kind, epochs=3, per_epoch=30, seed=0):
    rng = random.Random(seed)
    steps = list(range(1, epochs * per_epoch + 1))
    if kind == "stairs":
        levels = [2.0 * 0.65 ** e for e in range(epochs)]
        losses = [levels[(s - 1) // per_epoch] * (1 + 0.03 * rng.gauss(0, 1)) for s in steps]
    elif kind == "smooth":
        losses = [0.5 + 1.5 * math.exp(-s / 40) + 0.03 * rng.gauss(0, 1) for s in steps]
    else:
        losses = [2.0 - 0.01 * s + 0.03 * rng.gauss(0, 1) for s in steps]
    return steps, losses, [per_epoch * (e + 1) for e in range(epochs)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_staircase_is_flagged_and_smooth_curves_are_not(seed):
    stairs = detect_staircase(*_curve("stairs", seed=seed))
    assert stairs["flagged"] and stairs["score"] > 0.2
    assert [b["epoch"] for b in stairs["boundaries"]] == [1, 2] and all(b["flagged"] for b in stairs["boundaries"])
    for kind in ("smooth", "linear"):
        r = detect_staircase(*_curve(kind, seed=seed))
        assert not r["flagged"] and r["score"] < 0.05, kind


def test_staircase_edge_cases():
    assert detect_staircase([], [], [])["note"] == "no training loss logged"
    one = detect_staircase([1, 2, 3], [3.0, 2.0, 1.0], [3])
    assert one["score"] is None and not one["flagged"] and "fewer than two epochs" in one["note"]
    tiny = detect_staircase([1, 2, 3, 4], [2.0, 2.0, 1.0, 1.0], [2, 4])  # two steps per epoch: no z, relative only
    assert tiny["flagged"] and tiny["boundaries"][0]["z"] is None


# -- the command ----------------------------------------------------------------------------------------


def _recipe(tmp_path, lm_dir, extra=""):
    data = tmp_path / "rows.jsonl"
    words = "the cat sat on a mat and the dog ran to the park while birds sang songs about rain sun water".split()
    with open(data, "w") as f:
        for i in range(30):
            f.write(json.dumps({"instruction": f"tell me {i} things about {words[i % len(words)]}",
                                "output": " ".join(words[(i + j) % len(words)] for j in range(3 + i % 7))}) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""
name: tiny
sources:
  s: {{path: rows.jsonl, license: cc-by-4.0}}
steps:
  - score.heuristics: {{}}
  - select.top_k: {{by: response_words, rows: 10}}
outputs: {{dir: {tmp_path / 'runs' / 'tiny'}}}
cache: {{dir: {tmp_path / 'cache'}}}
{extra}""")
    return recipe


def test_cli_train_on_a_recipe_and_a_run_folder(lm_dir, tmp_path, monkeypatch):
    import typer

    from curate.train.cli import register

    app = typer.Typer()
    register(app)
    monkeypatch.chdir(tmp_path)
    recipe = _recipe(tmp_path, lm_dir)
    runner = CliRunner()
    sets = ["--set", f"train.model={lm_dir}", "--set", "train.max_steps=2", "--set", "train.batch_size=4",
            "--set", "train.threads=1", "--set", "train.val_fraction=0.2"]
    res = runner.invoke(app, ["train", str(recipe), *sets])
    assert res.exit_code == 0, res.output
    out = tmp_path / "runs" / "tiny" / "train"
    assert (out / "train.json").exists() and (out / "evals.json").exists() and (out / "adapter").is_dir()
    evals = json.loads((out / "evals.json").read_text())
    assert set(evals["tuned"]["metrics"]) == {"validation.loss"} and evals["base"]["metrics"]["validation.loss"] > 0
    assert "trained 2 steps" in res.output
    # a run folder, the random baseline, no evals
    res = runner.invoke(app, ["train", str(tmp_path / "runs" / "tiny"), "--data", "baseline_random", "--no-eval",
                              *sets])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "runs" / "tiny" / "train-baseline_random" / "loss.png").exists()
    # curate eval on the training folder: the adapter merged into its base model, against the base model
    qs = [{"question": f"what did the {w} do", "choices": ["sat", "ran", "sang"], "answer": i % 3}
          for i, w in enumerate(["cat", "dog", "bird"])]
    (tmp_path / "mc.json").write_text(json.dumps(qs))
    ev = ["--set", "evals.tasks.mc.kind=multiple_choice", "--set", "evals.tasks.mc.source.path=mc.json"]
    res = runner.invoke(app, ["eval", str(out), *ev, "--json", "ev.json"])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "ev.json").read_text())
    assert doc["model_loaded"].endswith("train/adapter") and "mc.accuracy" in doc["base"]["metrics"]
    assert "domain_gain" in doc and "| mc.accuracy ↑ |" in res.output
    res = runner.invoke(app, ["eval", str(lm_dir), *ev])
    assert res.exit_code == 0 and "base" not in res.output.split("\n")[0], res.output
    bad = runner.invoke(app, ["eval", str(lm_dir)])
    assert bad.exit_code == 2 and "no evaluations configured" in bad.output
    # errors are one line, exit code 2
    bad = runner.invoke(app, ["train", str(tmp_path / "runs" / "tiny"), "--set", "seed=3"])
    assert bad.exit_code == 2 and "only train.* and evals.*" in bad.output
    bad = runner.invoke(app, ["train", str(recipe), "--set", "train.lora.rank=2"])
    assert bad.exit_code == 2 and "train.lora.rank: unknown key" in bad.output


def test_read_rows_from_jsonl_parquet_and_a_run_folder(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.train.data import read_rows, split_rows

    rows = toy_rows(5)
    folder = tmp_path / "run"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist([{k: r[k] for k in ("id", "text", "assistant_spans")} for r in rows]),
                   folder / "data.parquet")
    got = read_rows(folder)
    assert [r["text"] for r in got] == [r["text"] for r in rows] and got[0]["assistant_spans"] == rows[0]["assistant_spans"]
    (folder / "baseline_random.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n")
    assert len(read_rows(folder, "baseline_random")) == 2
    with pytest.raises(CurateError, match="no nope.jsonl"):
        read_rows(folder, "nope")
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "assistant_spans": []}\n{oops\n')
    with pytest.raises(CurateError, match="bad.jsonl:2"):
        read_rows(tmp_path / "bad.jsonl")
    train_rows, val = split_rows(rows, 0.4, None, seed=1)
    assert len(val) == 2 and len(train_rows) == 3 and split_rows(rows, 0.4, None, seed=1)[1] == val
    assert split_rows(rows, 0.0, None, 0) == (rows, [])
