"""Odd but real input files, and odd outputs: every one is read correctly or refused with a message that
names the file and line, never a traceback; an empty result is a result."""

from __future__ import annotations

import bz2
import gzip
import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.errors import CurateError
from curate.io import read_jsonl
from curate.specs.source import Source
from curate.sources.load import load_source

runner = CliRunner()

ROWS = [{"instruction": f"Question number {i}?", "output": f"Answer number {i} is here."} for i in range(4)]


def lines(rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def load(path: Path, **kw):
    return load_source("s", Source(path=str(path), **kw), base_dir=path.parent)


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u0085"])
def test_unicode_line_separators_inside_strings_are_text(tmp_path, sep):
    rows = [dict(r, output=f"first{sep}second") for r in ROWS]
    p = tmp_path / "u.jsonl"
    p.write_bytes(lines(rows))
    loaded = load(p)
    assert loaded.rows_in == 4 and not loaded.skipped
    assert loaded.rows[3]["messages"][-1]["content"] == f"first{sep}second"
    assert json.loads(loaded.rows[3]["meta"])["source_row"] == "u.jsonl:4"


def test_curate_reads_its_own_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.jsonl").write_bytes(lines([dict(r, output=r["output"] + " \u2028 more") for r in ROWS]))
    (tmp_path / "r.yaml").write_text("name: a\nsources:\n  s: {path: d.jsonl, license: mit}\noutputs: {dir: out}\n")
    assert runner.invoke(app, ["run", "r.yaml"]).exit_code == 0
    again = load(tmp_path / "out" / "data.jsonl")  # the openai `messages` format, detected
    assert again.rows_in == 4 and [r["messages"] for r in again.rows] == [r["messages"] for r in read_jsonl(tmp_path / "out" / "data.jsonl")]


@pytest.mark.parametrize("name", ["b.jsonl", "b.json", "b.csv"])
def test_a_utf8_byte_order_mark_is_read_not_rejected(tmp_path, name):
    p = tmp_path / name
    if name.endswith(".jsonl"):
        body = lines(ROWS)
    elif name.endswith(".json"):
        body = json.dumps(ROWS).encode()
    else:
        body = ("instruction,output\n" + "".join(f"{r['instruction']},{r['output']}\n" for r in ROWS)).encode()
    p.write_bytes(b"\xef\xbb\xbf" + body)
    loaded = load(p, on_error="skip")
    assert loaded.rows_in == 4 and not loaded.skipped
    assert loaded.rows[0]["messages"][0]["content"] == "Question number 0?"


@pytest.mark.parametrize("name, opener", [
    ("c.jsonl.gz", gzip.compress), ("c.json.gz", gzip.compress), ("c.jsonl.bz2", bz2.compress), ("c.jsonl.zst", None),
])
def test_compressed_files_are_read_transparently(tmp_path, name, opener):
    body = json.dumps(ROWS).encode() if ".json." in name else lines(ROWS)
    p = tmp_path / name
    if opener is None:
        import pyarrow as pa

        with pa.output_stream(str(p), compression="zstd") as out:
            out.write(body)
    else:
        p.write_bytes(opener(body))
    loaded = load(p)
    assert loaded.rows_in == 4 and loaded.rows[2]["messages"][-1]["content"] == "Answer number 2 is here."
    assert loaded.inputs[0]["path"] == name and len(loaded.inputs[0]["sha256"]) == 64


def test_a_truncated_compressed_file_is_a_clear_error(tmp_path):
    p = tmp_path / "t.jsonl.gz"
    many = [{"instruction": f"Question {i * 7919 % 10007}?", "output": f"Answer {i * 104729 % 99991}."} for i in range(500)]
    p.write_bytes(gzip.compress(lines(many))[:2000])
    with pytest.raises(CurateError, match=r"t\.jsonl\.gz: could not read the file"):
        load(p)


def test_a_json_array_saved_as_jsonl_gets_a_hint(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text(json.dumps(ROWS, indent=2))
    with pytest.raises(CurateError, match=r"a\.jsonl:1: this looks like one JSON array.*file_type: json"):
        load(p, on_error="skip")


def test_an_empty_file_is_named(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_bytes(b"")
    with pytest.raises(CurateError, match=r"sources\.s: the source has no rows; empty file: empty\.jsonl"):
        load(p)


def test_skip_also_skips_lines_that_are_not_utf8(tmp_path):
    p = tmp_path / "mixed.jsonl"
    body = lines(ROWS).split(b"\n")
    body[1] = b'{"instruction": "caf\xe9", "output": "latin-1 bytes"}'
    p.write_bytes(b"\n".join(body))
    loaded = load(p, on_error="skip")
    assert loaded.rows_in == 4 and len(loaded.rows) == 3
    assert loaded.skipped[0].where == "mixed.jsonl:2" and "not valid UTF-8: byte 0xe9" in loaded.skipped[0].reason
    with pytest.raises(CurateError, match=r"mixed\.jsonl:2: not valid UTF-8: byte 0xe9.*on_error: skip"):
        load(p)


def test_lone_surrogates_and_deep_nesting_are_malformed_rows_not_tracebacks(tmp_path):
    p = tmp_path / "odd.jsonl"
    deep = "[" * 5000 + "]" * 5000
    p.write_text("\n".join([
        json.dumps(ROWS[0]),
        '{"instruction": "bad \\ud800 text", "output": "fine"}',
        '{"instruction": "deep", "output": "x", "extra": ' + deep + "}",
        json.dumps(ROWS[1]),
    ]) + "\n")
    loaded = load(p, on_error="skip")
    assert loaded.rows_in == 4 and len(loaded.rows) == 2
    reasons = {s.where: s.reason for s in loaded.skipped}
    assert "lone surrogate" in reasons["odd.jsonl:2"] and "nested too deeply" in reasons["odd.jsonl:3"]
    with pytest.raises(CurateError, match=r"odd\.jsonl:2: .*lone surrogate"):
        load(p)


def test_a_10_mb_row_goes_through_a_whole_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    big = "word " * 2_000_000
    (tmp_path / "d.jsonl").write_bytes(lines(ROWS + [{"instruction": "Write a lot.", "output": big}]))
    (tmp_path / "r.yaml").write_text(textwrap.dedent("""
        name: big
        sources:
          s: {path: d.jsonl, license: mit}
        steps:
          - clean: {}
          - score.heuristics: {}
          - dedup.minhash: {key: response}
        outputs: {dir: out, formats: [jsonl, parquet]}
    """))
    res = runner.invoke(app, ["run", "r.yaml"])
    assert res.exit_code == 0, res.output
    rows = read_jsonl(tmp_path / "out" / "data.jsonl")
    assert len(rows) == 5 and rows[-1]["response_words"] == 2_000_000


@pytest.mark.parametrize("jinja, words", [
    ("{{ range(10**8) | list | length }}", "Range too big"),
    ("{% import 'other.jinja' as o %}", "cannot {% include %} or {% import %}"),
    ("{% include 'other.jinja' %}", "cannot {% include %} or {% import %}"),
    ("{{ lipsum() }}", "'lipsum' is undefined"),
    ("{{ 'x' * 10**9 }}", "may not build a value"),
])
def test_template_abuse_is_a_clear_error(tmp_path, monkeypatch, jinja, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.jsonl").write_bytes(lines(ROWS))
    recipe = {"name": "j", "sources": {"s": {"path": "d.jsonl", "license": "mit"}},
              "template": {"jinja": jinja + "{% for m in messages %}{{ m.content }}{% endfor %}"},
              "outputs": {"dir": "out"}}
    (tmp_path / "r.yaml").write_text(json.dumps(recipe))
    res = runner.invoke(app, ["run", "r.yaml"])
    assert res.exit_code == 2 and words in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


def test_a_recipe_that_drops_every_row_finishes_with_empty_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.jsonl").write_bytes(lines(ROWS))
    (tmp_path / "r.yaml").write_text(textwrap.dedent("""
        name: none
        sources:
          s: {path: d.jsonl, license: mit}
        steps:
          - clean: {}
          - score.heuristics: {}
          - filter: {rules: ["response_words >= 1000"]}
          - dedup.exact: {key: prompt}
          - dedup.minhash: {}
        template: {format: llama-3}
        outputs: {dir: out, formats: [jsonl, parquet, arrow]}
    """))
    res = runner.invoke(app, ["run", "r.yaml"])
    assert res.exit_code == 0, res.output
    assert "no rows are left" in res.output
    out = tmp_path / "out"
    assert (out / "data.jsonl").read_text() == ""
    import pyarrow.parquet as pq
    from datasets import load_from_disk

    assert pq.read_table(out / "data.parquet").num_rows == 0 and len(load_from_disk(str(out / "data"))) == 0
    rejects = read_jsonl(out / "rejects.jsonl")
    assert len(rejects) == 4 and {r["step"] for r in rejects} == {"filter"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["totals"] == {"rows_in": 4, "rows_out": 0, "dropped": 4}
