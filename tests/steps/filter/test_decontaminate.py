"""decontaminate on real eval sets: copies of eval items of every length are caught, lightly edited copies
too, and the real instruction pool loses only the rows that really hold an eval item."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pyarrow as pa
import pytest

from curate.specs.source import Source
from curate.sources.load import load_source
from curate.steps.filter.decontaminate import Decontaminate
from curate.steps.filter.overlap import words
from tests.helpers import build, pairs_dataset

# The LIMA rows that are GSM8K training questions, word for word: real contamination, found by hand.
LIMA_GSM8K = {"b79f4f910e10a6e0", "6fef43f09c55f087", "53ce17e06ef9be56", "845c0d79830334d5", "7c3d4dc9929bf8ef",
              "aac3ee31fafabfc6"}


def eval_sets(data: Path) -> list[dict]:
    return [{"path": str(data / "arc_easy_validation.json"), "name": "arc_easy_val"},
            {"path": str(data / "mmlu" / "val" / "*.csv"), "csv_columns": ["question", "A", "B", "C", "D", "answer"],
             "name": "mmlu_val"},
            {"path": str(data / "gsm8k_train.jsonl"), "name": "gsm8k_train"}]


def eval_questions(data: Path) -> list[str]:
    qs = [r["question"] for r in json.loads((data / "arc_easy_validation.json").read_text())]
    for f in sorted((data / "mmlu" / "val").glob("*.csv")):
        qs += [r[0] for r in csv.reader(f.open(encoding="utf-8"))]
    qs += [json.loads(line)["question"] for line in (data / "gsm8k_train.jsonl").read_text().splitlines()]
    return qs


def edit(question: str, kind: str, rng: random.Random) -> str | None:
    tokens = question.split()
    if kind == "exact":
        return question
    if kind == "prefix":
        return "Question: " + question
    if kind == "casing":
        return question.upper()
    if kind == "word":
        spots = [i for i, t in enumerate(tokens) if t.isalpha() and t.lower() != "zebra"]
        if not spots:
            return None
        tokens[rng.choice(spots)] = "zebra"
    else:
        spots = [i for i, t in enumerate(tokens) if t.isdigit()]
        if not spots:
            return None
        i = rng.choice(spots)
        tokens[i] = str(int(tokens[i]) + 1)
    return " ".join(tokens)


@pytest.fixture(scope="module")
def step(shared_data):
    s = build(Decontaminate, eval_sets=eval_sets(shared_data))
    s._eval_index()  # built once for the module
    return s


def test_copies_of_every_length_are_caught(shared_data, step):
    rng = random.Random(0)
    by_length: dict[int, list[str]] = {}
    for q in eval_questions(shared_data):
        by_length.setdefault(len(words(q)), []).append(q)
    planted = []  # (length, kind, prompt)
    for length in range(5, 61):
        for q in rng.sample(by_length.get(length, []), min(3, len(by_length.get(length, [])))):
            if len(q.split()) != length:  # one whitespace token per word, so an edit touches one word
                continue
            for kind in ("exact", "prefix", "casing", "word", "number"):
                text = edit(q, kind, rng)
                if text is not None:
                    planted.append((length, kind, text))
    out = step.decide(pairs_dataset([(text, "The answer is below.") for _, _, text in planted]))
    found: dict[tuple[str, str], list[bool]] = {}
    for (length, kind, _), drop in zip(planted, out):
        bucket = "5-7" if length < 8 else "8-12" if length < 13 else "13-25" if length < 26 else "26-60"
        found.setdefault((bucket, "exact" if kind in ("exact", "prefix", "casing") else "edited"), []).append(drop is not None)
    recall = {k: sum(v) / len(v) for k, v in found.items()}
    for bucket in ("5-7", "8-12", "13-25", "26-60"):
        assert recall[(bucket, "exact")] >= 0.95, (bucket, recall)
    edited = [x for (bucket, kind), v in found.items() if kind == "edited" for x in v]
    assert sum(edited) / len(edited) >= 0.90, recall
    assert recall[("8-12", "edited")] >= 0.95 and recall[("26-60", "edited")] >= 0.95  # one changed word or number


def test_the_real_pool_loses_only_its_real_copies(shared_data, step):
    rows = []
    for name in ("alpaca_gpt4_en_demo_999.json", "cherry_alpaca_5_percent.json", "code_alpaca_2k.json", "lima_train.json"):
        rows += load_source(name.split(".")[0], Source(path=str(shared_data / name))).rows
    rows += load_source("seeds", Source(path=str(shared_data / "self_instruct_seed_tasks.jsonl"), format="columns",
                                        options={"prompt": "instruction", "response": "instances.0.output"})).rows
    step.ctx.notes, step.ctx.counts = {}, {}  # counts add up over calls, as over batches
    out = step.decide(pa.Table.from_pylist(rows))
    dropped = {rows[i]["id"] for i, d in enumerate(out) if d is not None}
    assert dropped == LIMA_GSM8K
    notes = step.ctx.notes
    assert notes["rows_matched"]["gsm8k_train"] == 6
    assert notes["by_check"]["mmlu_val"]["uncheckable"] == notes["too_short"] > 0  # said, not hidden
    assert sum(notes["by_check"]["arc_easy_val"].values()) == notes["eval_sets"]["arc_easy_val"] == 570


def test_answer_aware_mode_needs_the_answer_too(shared_data):
    arc = json.loads((shared_data / "arc_easy_validation.json").read_text())
    item = next(r for r in arc if len(words(r["question"])) >= 15)
    answer = item["choices"]["text"][item["choices"]["label"].index(item["answerKey"])]
    pool = [(item["question"], "I do not know."), (item["question"], f"It is {answer}.")]
    aware = build(Decontaminate, answer_aware=True, eval_sets=eval_sets(shared_data)[:1])
    plain = build(Decontaminate, eval_sets=eval_sets(shared_data)[:1])
    assert [d is not None for d in plain.decide(pairs_dataset(pool))] == [True, True]
    assert [d is not None for d in aware.decide(pairs_dataset(pool))] == [False, True]
