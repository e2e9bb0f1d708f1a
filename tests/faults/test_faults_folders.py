"""A run folder is curate's only if curate marked it: everything else is refused and left untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app
from tests.faults.fault_helpers import workspace

runner = CliRunner()


@pytest.fixture
def ws(tmp_path, monkeypatch):
    root = workspace(tmp_path / "ws")
    monkeypatch.chdir(root)
    return root


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(res, *words: str) -> None:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    for w in words:
        assert w in res.output, res.output


def test_a_folder_that_only_looks_like_a_run_is_refused_and_untouched(ws):
    site = ws / "site"
    site.mkdir()
    (site / "manifest.json").write_text('{"name": "my web app"}')
    (site / "index.html").write_text("<html>mine</html>")
    before = snapshot(site)
    res = runner.invoke(app, ["run", "r.yaml", "--set", "outputs.dir=site"])
    refused(res, "site exists and is not a curate run folder", ".curate-run")
    assert snapshot(site) == before


def test_a_marked_folder_is_replaced_and_an_unmarked_one_is_not(ws):
    assert runner.invoke(app, ["run", "r.yaml"]).exit_code == 0
    out = ws / "runs" / "out"
    assert (out / ".curate-run").is_file()
    assert runner.invoke(app, ["run", "r.yaml"]).exit_code == 0  # its own folder: replaced
    (out / ".curate-run").unlink()
    refused(runner.invoke(app, ["run", "r.yaml"]), "not a curate run folder")


@pytest.mark.parametrize("target, words", [
    ("a_file.txt", ["is a file, not a folder"]),
    ("link", ["is a symbolic link"]),
    (".", ["current folder or one above it"]),
    ("..", ["current folder or one above it"]),
])
def test_paths_that_cannot_be_a_run_folder(ws, target, words):
    (ws / "a_file.txt").write_text("mine")
    (ws / "real").mkdir()
    os.symlink(ws / "real", ws / "link")
    before = snapshot(ws)
    refused(runner.invoke(app, ["run", "r.yaml", "--set", f"outputs.dir={target}"]), *words)
    assert snapshot(ws) == before


def test_a_folder_holding_the_recipe_its_inputs_or_the_cache_is_refused(ws, tmp_path):
    # the recipe lives in ws/; an empty subfolder as outputs.dir is fine, ws itself (from outside) is not
    os.chdir(tmp_path)
    refused(runner.invoke(app, ["run", "ws/r.yaml", "--set", "outputs.dir=ws"]), "holds the recipe")
    os.chdir(ws)
    (ws / "data").mkdir()
    (ws / "general.jsonl").rename(ws / "data" / "general.jsonl")
    refused(runner.invoke(app, ["run", "r.yaml", "--set", "sources.general.path=data/general.jsonl",
                                "--set", "outputs.dir=data"]), "holds the input")
    refused(runner.invoke(app, ["run", "r.yaml", "--set", "sources.general.path=data/general.jsonl",
                                "--set", "outputs.dir=cache_parent", "--set", "cache.dir=cache_parent/c"]),
            "holds the step cache")
    assert sorted(p.name for p in (ws / "data").iterdir()) == ["general.jsonl"]


def test_validate_reports_a_bad_output_folder_too(ws):
    (ws / "site").mkdir()
    (ws / "site" / "x.txt").write_text("mine")
    res = runner.invoke(app, ["validate", "r.yaml", "--set", "outputs.dir=site"])
    refused(res, "not a curate run folder")
