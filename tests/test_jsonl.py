"""curate.jsonl writes each row exactly as `dumps(row_for_json(row))` would, a column at a time."""

import datetime
import json
import math

import pyarrow as pa
import pytest

from curate.io import dumps, row_for_json
from curate.jsonl import encode_rows


def row_by_row(table: pa.Table) -> list[str]:
    return [dumps(row_for_json(row)) for row in table.to_pylist()]


def odd_table() -> pa.Table:
    nan, inf = math.nan, math.inf
    messages = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    return pa.table({
        "id": ["a", None, 'q"uo\\te', "tab\there\nnew\x00\x1f\u2028", "é中😀", "%s %d 100%"],
        "messages": pa.array([[{"role": "user", "content": "hi"}], None, [], [{"role": None, "content": "x"}, None],
                              [{"role": "assistant", "content": "\r\n\x7f\x0c"}], [{"role": "user", "content": ""}]],
                             messages),
        "meta": ['{"source_row": "a.jsonl:1"}', None, '{"b":1,"a":[1.5,null]}', '{"x": NaN, "y": {"z": Infinity}}',
                 '"just a string"', '{"b":1,"a":[1.5,null]}'],  # a repeat: decoded once, written alike
        "score": [1.0, nan, -inf, None, -0.0, 1e16],
        "small": pa.array([1.5, 1e-7, None, 3.0, float("nan"), 2.0], pa.float32()),
        "count": pa.array([1, None, -5, 2**62, 0, 7], pa.int64()),
        "unsigned": pa.array([0, 2**64 - 1, None, 1, 2, 3], pa.uint64()),
        "flag": [True, False, None, True, False, True],
        "nothing": pa.nulls(6),
        "spans": pa.array([[[0, 3], [5, 9]], [], None, [[1, 2], None], [[]], [[7, 8]]], pa.list_(pa.list_(pa.int64()))),
        "nested": pa.array([{"x": nan, "y": [inf, 1.0]}, None, {"x": 2.0, "y": None}, {"x": None, "y": []},
                            {"x": 1.0, "y": [nan]}, {"x": 0.1, "y": [0.2]}],
                           pa.struct([("x", pa.float64()), ("y", pa.list_(pa.float64()))])),
        "when": pa.array([datetime.datetime(2026, 1, 2, 3, 4, 5)] * 5 + [None], pa.timestamp("us")),
        "blob": pa.array([b"\x00\xff", None, b"", b"a", b"b", b"c"], pa.binary()),
        "labels": pa.array(["x", "y", "x", None, "y", "x"]).dictionary_encode(),
        "big": pa.array(["l" * 3, None, "", "m", "n", "o"], pa.large_string()),
        "kv": pa.array([[("a", 1)], None, [], [("b", None)], [("c", 2)], [("d", 3)]], pa.map_(pa.string(), pa.int64())),
        "100% \"odd\" name": [1, 2, 3, 4, 5, 6],
    })


def test_each_line_is_the_row_by_row_text():
    table = odd_table()
    lines = encode_rows(table)
    assert lines == row_by_row(table)
    for line in lines:
        json.loads(line)  # valid JSON: no NaN, no Infinity
    assert '"score": null' in lines[1] and '"meta": {"b": 1, "a": [1.5, null]}' in lines[2]


@pytest.mark.parametrize("cut", ["sliced", "chunked", "filtered", "empty", "no columns"])
def test_slices_chunks_and_empty_tables(cut):
    table = odd_table()
    if cut == "sliced":
        table = table.slice(2, 3)
    elif cut == "chunked":
        table = pa.concat_tables([table.slice(0, 2), table.slice(2, 1), table.slice(3)])
        assert table.column("messages").num_chunks == 3
    elif cut == "filtered":
        table = table.filter(pa.array([True, False, True, True, False, True]))
    elif cut == "empty":
        table = table.slice(0, 0)
    else:
        table = table.select([])
    assert encode_rows(table) == row_by_row(table)


def test_real_rows_with_their_scores_are_the_row_by_row_text(shared_data):
    """LIMA (long, multi-turn-like answers), Code Alpaca (code, quotes, backslashes) and the heuristic scores
    (ints, ratios, NaN with a `_why`), as a step's rejects hold them."""
    from curate.rows import make_row
    from curate.steps.score.heuristics import Heuristics
    from tests.helpers import build

    rows = []
    for name in ("lima_train.json", "code_alpaca_2k.json"):
        for i, r in enumerate(json.loads((shared_data / name).read_text())[:400]):
            messages = [{"role": "user", "content": r["instruction"] + ("\n\n" + r["input"] if r["input"] else "")},
                        {"role": "assistant", "content": r["output"]}]
            rows.append(make_row(name, messages, {"source_row": f"{name}:{i}", "input": r["input"]}))
    table = pa.Table.from_pylist(rows)
    for column, values in build(Heuristics).apply(table).columns.items():
        table = table.append_column(column, values)
    assert table.num_columns > 10
    assert encode_rows(table) == row_by_row(table)


@pytest.mark.parametrize("options", [{}, {"sort_keys": True}, {"sort_keys": True, "default": str},
                                     {"allow_nan": False, "default": str}])
def test_the_made_once_encoder_writes_what_json_dumps_writes(options):
    from curate.io import json_encoder

    encode = json_encoder(**options)
    objects = [{"b": {"y": 1, "x": [1.5, -0.0, 10**30]}, "a": "é\n\"\\\x00"}, [], "text", None, True, 2.5,
               {"nan": math.nan, "inf": [math.inf]}, {"when": datetime.date(2026, 12, 1)}, {3: "int key", "2": 1}]
    for obj in objects:
        try:
            expected = json.dumps(obj, ensure_ascii=False, **options)
        except (TypeError, ValueError) as e:
            with pytest.raises(type(e), match="."):
                encode(obj)
            continue
        assert encode(obj) == expected


def test_a_rejects_entry_carries_the_stored_detail_as_dumps_writes_it():
    """rejects.jsonl takes a drop's detail as stored (detail_json: keys sorted) unless it holds NaN or
    Infinity, which dumps writes as null: the same text as re-encoding every detail."""
    from curate.engine.outputs import _reject_heads
    from curate.engine.worker import detail_json
    from curate.ledger import Drop

    details = [{"similarity": 0.8123456789, "b": [1, 2.5e-07, None], "a": {"z": "é ✓ \"q\"", "y": True}},
               {"score": math.nan, "why": "NaN"}, {"bound": math.inf, "low": -math.inf}, {"text": "no NaN here"},
               {3: "int key", 1: "one"}, {"nested": {"c": 1, "a": [math.nan]}}, None, {"when": datetime.date(2026, 12, 1)}]
    stored = [detail_json(Drop(reason="r", detail=d)) if d is not None else None for d in details]
    drops = pa.table({"reason": ["r"] * len(details), "duplicate_of": [None, "abc", None, None, None, None, None, "d"],
                      "detail": stored})
    heads = _reject_heads("dedup.minhash", drops)
    for head, detail, dup in zip(heads, stored, drops.column("duplicate_of").to_pylist()):
        want = {"step": "dedup.minhash", "reason": "r"} | ({"duplicate_of": dup} if dup else {}) \
            | ({"detail": json.loads(detail)} if detail else {})
        assert head == dumps(want)[:-1] + ', "row": '
