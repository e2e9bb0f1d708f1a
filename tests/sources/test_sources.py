"""Adapters and the loader: every format, auto-detection, and every kind of bad input."""

import json

import pytest

from curate.errors import CurateError
from curate.specs.source import Source
from curate.sources.adapters import ADAPTERS, detect_adapter
from curate.sources.load import load_source


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def load(path, **kw):
    return load_source("s", Source(path=str(path), **kw))


def messages(loaded, i=0):
    return [(m["role"], m["content"]) for m in loaded.rows[i]["messages"]]


def test_alpaca_with_input_system_and_history(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", [{
        "instruction": "Translate", "input": "bonjour", "output": "hello", "system": "Be brief.",
        "history": [["hi", "hello there"]], "id": 7,
    }])
    got = load(p)
    assert got.adapter == "alpaca"
    assert messages(got) == [("system", "Be brief."), ("user", "hi"), ("assistant", "hello there"),
                             ("user", "Translate\n\nbonjour"), ("assistant", "hello")]
    meta = json.loads(got.rows[0]["meta"])
    assert meta["id"] == 7 and meta["source_row"].endswith("a.jsonl:1")


def test_sharegpt_dicts_and_plain_strings(tmp_path):
    p = write_jsonl(tmp_path / "s.jsonl", [
        {"conversations": [{"from": "system", "value": "sys"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
        {"conversations": ["q1", "a1", "q2", "a2"]},
    ])
    got = load(p)
    assert got.adapter == "sharegpt"
    assert messages(got, 0) == [("system", "sys"), ("user", "q"), ("assistant", "a")]
    assert messages(got, 1) == [("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2")]


def test_openai_messages_and_prompt_completion(tmp_path):
    p = write_jsonl(tmp_path / "m.jsonl", [{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}])
    assert messages(load(p)) == [("user", "x"), ("assistant", "y")]
    p = write_jsonl(tmp_path / "pc.jsonl", [{"prompt": "x", "completion": "y"}])
    got = load(p)
    assert got.adapter == "prompt_completion" and messages(got) == [("user", "x"), ("assistant", "y")]


def test_qa_keeps_gsm8k_final_answer(tmp_path):
    p = write_jsonl(tmp_path / "q.jsonl", [{"question": "2+2?", "answer": "2+2=4\n#### 4"}])
    got = load(p)
    assert got.adapter == "qa"
    assert json.loads(got.rows[0]["meta"])["final_answer"] == "4"


def test_multiple_choice_arc_style_and_headerless_csv(tmp_path):
    arc = tmp_path / "arc.json"
    arc.write_text(json.dumps([{"id": "q1", "question": "Sky colour?", "choices": {"text": ["red", "blue"], "label": ["A", "B"]}, "answerKey": "B"}]))
    got = load(arc)
    assert got.adapter == "multiple_choice"
    assert messages(got)[0][1].startswith("Sky colour?\n\nA. red\nB. blue")
    assert messages(got)[1] == ("assistant", "B. blue")
    csv = tmp_path / "mmlu.csv"
    csv.write_text('"What is 1+1, really?",1,2,3,4,B\nSecond?,a,b,c,d,D\n')
    got = load(csv, csv_columns=["question", "A", "B", "C", "D", "answer"], options={"answer_style": "letter"})
    assert [m[1] for m in messages(got, 0)][1] == "B"
    assert json.loads(got.rows[1]["meta"])["answer_letter"] == "D"
    assert json.loads(got.rows[1]["meta"])["source_row"].endswith("mmlu.csv:2")


def test_multiple_choice_integer_answer_index(tmp_path):
    p = write_jsonl(tmp_path / "m.jsonl", [{"question": "q?", "choices": ["w", "x", "y"], "answer": 2}])
    assert messages(load(p))[1] == ("assistant", "C. y")


def test_columns_mapping_reaches_nested_fields(tmp_path):
    p = write_jsonl(tmp_path / "seed.jsonl", [{"name": "t", "instruction": "Do it", "instances": [{"input": "in", "output": "out"}]}])
    got = load(p, format="columns", options={"prompt": "instruction", "input": "instances.0.input", "response": "instances.0.output"})
    assert messages(got) == [("user", "Do it\n\nin"), ("assistant", "out")]
    assert json.loads(got.rows[0]["meta"])["name"] == "t"


def test_ids_are_stable_and_shared_by_identical_conversations(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Hi  there", "output": "yo"}, {"instruction": "hi there", "output": "Yo"}])
    got = load(p)
    assert got.rows[0]["id"] == got.rows[1]["id"]  # same conversation after normalisation
    assert got.rows[0]["id"] == load(p).rows[0]["id"]


def test_auto_detection_order_and_failure():
    assert detect_adapter({"messages", "instruction"}, "x") is ADAPTERS["openai"]
    assert detect_adapter({"question", "answer"}, "x") is ADAPTERS["qa"]
    with pytest.raises(CurateError, match="cannot tell the format"):
        detect_adapter({"foo"}, "x")


# -- bad input ---------------------------------------------------------------------------------------


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"instruction": "a", "output": "b"}\n{"instruction": oops}\n')
    with pytest.raises(CurateError, match=r"bad\.jsonl:2: malformed JSON line"):
        load(p)


def test_malformed_lines_skipped_and_kept_for_the_ledger(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"instruction": "a", "output": "b"}\nnot json\n{"instruction": "c"}\n{"instruction": "d", "output": "e"}\n')
    got = load(p, on_error="skip")
    assert len(got.rows) == 2 and got.rows_in == 4
    assert [s.where.rsplit(":", 1)[1] for s in got.skipped] == ["2", "3"]
    assert "malformed JSON" in got.skipped[0].reason and got.skipped[0].raw == "not json"
    assert "field 'output' is missing" in got.skipped[1].reason


def test_missing_and_wrongly_typed_fields(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "a", "output": "b"}, {"instruction": "a", "output": ["b"]}])
    with pytest.raises(CurateError, match=r"a\.jsonl:2: field 'output' must be str, got list"):
        load(p)
    p = write_jsonl(tmp_path / "b.jsonl", [{"conversations": [{"from": "alien", "value": "x"}]}])
    with pytest.raises(CurateError, match="unknown speaker 'alien'"):
        load(p)


def test_wrong_format_for_the_columns(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(CurateError, match="field 'instruction' is missing"):
        load(p, format="alpaca")


def test_empty_source_and_missing_file(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("\n\n")
    with pytest.raises(CurateError, match="sources.s: the source has no rows"):
        load(p)
    with pytest.raises(CurateError, match=r"sources.s.path: no file matches"):
        load(tmp_path / "nope.jsonl")
    with pytest.raises(CurateError, match=r"no file matches"):
        load(tmp_path / "*.parquet")


def test_non_utf8_bytes_name_the_line(tmp_path):
    p = tmp_path / "latin.jsonl"
    p.write_bytes(b'{"instruction": "a", "output": "b"}\n{"instruction": "caf\xe9", "output": "b"}\n')
    with pytest.raises(CurateError, match=r"latin\.jsonl:2: not valid UTF-8: byte 0xe9"):
        load(p)


def test_malformed_json_array_and_csv_row(tmp_path):
    p = tmp_path / "a.json"
    p.write_text('[\n {"instruction": "a", "output": "b"},\n {"instruction": }\n]')
    with pytest.raises(CurateError, match=r"a\.json:3: malformed JSON"):
        load(p)
    csv = tmp_path / "c.csv"
    csv.write_text("question,answer\nq1,a1\nq2,a2,extra\n")
    with pytest.raises(CurateError, match=r"c\.csv:3: 3 fields where the header has 2"):
        load(csv)


def test_row_without_assistant_turn(tmp_path):
    p = write_jsonl(tmp_path / "m.jsonl", [{"messages": [{"role": "user", "content": "x"}]}])
    with pytest.raises(CurateError, match="does not end with an assistant turn"):
        load(p)


def test_hub_unreachable_says_how_to_point_at_a_local_copy(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(CurateError, match=r"--set sources.s.path=FILE"):
        load_source("s", Source(hub="nobody/not-a-dataset-xyz"))


# -- real data ---------------------------------------------------------------------------------------


def test_real_files_load_with_the_right_adapters(shared_data):
    expected = {
        "alpaca_gpt4_en_demo_999.json": ("alpaca", 999),
        "cherry_alpaca_5_percent.json": ("alpaca", 3111),
        "code_alpaca_2k.json": ("alpaca", 2017),
        "lima_train.json": ("alpaca", 1029),
        "gsm8k_train.jsonl": ("qa", 7473),
        "arc_easy_train.json": ("multiple_choice", 2251),
    }
    for name, (adapter, rows) in expected.items():
        got = load(shared_data / name)
        assert (got.adapter, len(got.rows)) == (adapter, rows), name
    lima = load(shared_data / "lima_train.json")
    assert sum(len(r["messages"]) > 2 for r in lima.rows) == 29  # the multi-turn rows keep their history
    mmlu = load(shared_data / "mmlu" / "val" / "*.csv", csv_columns=["question", "A", "B", "C", "D", "answer"])
    assert (mmlu.adapter, len(mmlu.rows)) == ("multiple_choice", 1542)
    seeds = load(shared_data / "self_instruct_seed_tasks.jsonl", format="columns",
                 options={"prompt": "instruction", "input": "instances.0.input", "response": "instances.0.output"})
    assert len(seeds.rows) == 175
