"""Outputs for people and programs: the same bytes from any working folder, JSON Lines that programs can
read, nothing that drives a terminal, a card that never renders HTML from a recipe, rejects shaped like
the data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.errors import CurateError
from curate.io import read_jsonl
from curate.ledger import reason_group
from curate.recipe import load_recipe
from tests.faults.fault_helpers import curate_run, same_run, workspace

runner = CliRunner()


def test_outputs_do_not_depend_on_the_working_folder(tmp_path):
    ws = workspace(tmp_path / "project" / "recipes")
    (tmp_path / "project" / "deeper" / "still").mkdir(parents=True)
    # the same recipe run from three folders, writing to the same absolute place each time
    results = []
    for i, cwd in enumerate((ws, tmp_path / "project", tmp_path / "project" / "deeper" / "still")):
        out = tmp_path / "out"
        recipe = os.path.relpath(ws / "r.yaml", cwd)
        proc = subprocess.run([sys.executable, "-m", "curate.cli", "run", recipe, "--set", f"outputs.dir={out}",
                               "--set", f"cache.dir={tmp_path / 'cache'}", "--no-cache"],
                              cwd=cwd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        shutil.copytree(out, tmp_path / f"run{i}")
        results.append(tmp_path / f"run{i}")
    assert same_run(results[0], results[1]) and same_run(results[0], results[2])
    row = read_jsonl(results[0] / "data.jsonl")[0]
    assert row["meta"]["source_row"].split(":")[0] in ("general.jsonl", "domain.jsonl")  # relative to the recipe
    manifest = json.loads((results[0] / "manifest.json").read_text())
    assert manifest["recipe"]["sources"]["general"]["path"] == "general.jsonl"
    assert manifest["sources"]["general"]["inputs"][0]["path"] == "general.jsonl"


def test_inspect_json_prints_json_lines_only(tmp_path):
    ws = workspace(tmp_path)
    assert curate_run(ws).returncode == 0
    for extra in ([], ["--dropped"]):
        proc = subprocess.run([sys.executable, "-m", "curate.cli", "inspect", "runs/out", "--json", "-n", "3", *extra],
                              cwd=ws, capture_output=True, text=True)
        assert proc.returncode == 0
        lines = proc.stdout.splitlines()
        assert len(lines) == 3 and all(isinstance(json.loads(x), dict) for x in lines)
        assert "rows match" in proc.stderr and "rows match" not in proc.stdout


def test_inspect_never_passes_terminal_escapes_through(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = "Clear\x1b[2J\x1b]0;pwned\x07 and \x9b31m red"
    (tmp_path / "d.jsonl").write_text(json.dumps({"instruction": "Say it " + evil, "output": "Done " + evil}) + "\n")
    (tmp_path / "r.yaml").write_text("name: esc\nsources:\n  s: {path: d.jsonl, license: mit}\noutputs: {dir: out}\n")
    assert runner.invoke(app, ["run", "r.yaml"]).exit_code == 0
    proc = subprocess.run([sys.executable, "-m", "curate.cli", "inspect", "out"], capture_output=True, text=True)
    assert proc.returncode == 0
    for bad in ("\x1b", "\x07", "\x9b"):
        assert bad not in proc.stdout
    assert "\\x1b[2J" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "curate.cli", "inspect", "out", "--json"], capture_output=True, text=True)
    assert "\x1b" not in proc.stdout and "\x9b" not in proc.stdout
    assert json.loads(proc.stdout)["messages"][-1]["content"] == "Done " + evil


def test_rejects_carry_meta_as_an_object_like_the_data(tmp_path):
    ws = workspace(tmp_path)
    assert curate_run(ws).returncode == 0
    rejects = read_jsonl(ws / "runs" / "out" / "rejects.jsonl")
    rows = [r["row"] for r in rejects if r["step"] != "load"]
    assert rows and all(isinstance(r["meta"], dict) and "source_row" in r["meta"] for r in rows)


def test_reasons_are_grouped_by_rule_without_touching_names():
    assert reason_group("contaminated: 13-gram shared with gsm8k_test row 12") == \
        "contaminated: #-gram shared with gsm8k_test row #"
    assert reason_group("response_words=1 < min 3") == "response_words=# < min #"
    assert reason_group("judge of llama3 = 4.5e-3 below 0.5") == "judge of llama3 = # below #"


def test_recipe_names_cannot_leave_their_folder(tmp_path):
    p = tmp_path / "r.yaml"
    for name in ("../../etc", "a/b", ".hidden"):
        p.write_text(f"name: {json.dumps(name)}\nsources:\n  s: {{path: d.jsonl}}\n")
        with pytest.raises(CurateError, match="a recipe name is letters"):
            load_recipe(p)


def test_the_card_escapes_html_from_the_recipe(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"instruction": f"Question {i} here?",
                                                          "output": f"Answer {i} is this."}) + "\n" for i in range(5)))
    (tmp_path / "r.yaml").write_text(textwrap.dedent("""
        name: html
        description: 'Nice set <script>alert(1)</script> & <img src=x onerror=alert(2)>'
        sources:
          "evil<b>src</b>": {path: d.jsonl, license: "mit<iframe src=//x>"}
        outputs: {dir: out}
        card: {pretty_name: "<h1>Title</h1>", motivation: "because <script>x</script>"}
    """))
    assert runner.invoke(app, ["run", "r.yaml"]).exit_code == 0
    res = runner.invoke(app, ["card", "out", "--out", "card"])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "card" / "README.md").read_text()
    body = text.split("---", 2)[2]  # after the YAML header
    for raw in ("<script>", "<img", "<iframe", "<h1>", "<b>"):
        # outside code spans no raw tag survives
        outside = "".join(part for k, part in enumerate(body.split("`")) if k % 2 == 0)
        assert raw not in outside, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
