"""`curate publish`: --dry-run writes exactly the folder that would be uploaded (and the Hub's loader
reads it by the card's configs); the upload itself goes through huggingface_hub, faked here (no
network), and fails with one clear message when the Hub cannot be reached."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import typer
from huggingface_hub import DatasetCard
from typer.testing import CliRunner

from curate.card.cli import register
from curate.card.publish import publish
from curate.errors import CurateError
from curate.pipeline import run_recipe
from curate.recipe import load_recipe
from tests.test_pipeline import RECIPE, make_data

PLOTS = ["funnel.png", "lengths.png", "scores.png"]


def make_run(tmp_path, formats: str) -> Path:
    make_data(tmp_path)
    (tmp_path / "r.yaml").write_text(textwrap.dedent(RECIPE).replace("[jsonl, parquet, arrow]", formats))
    run_recipe(load_recipe("r.yaml"))
    return tmp_path / "out"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli():
    app = typer.Typer()
    register(app)
    return app


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_dry_run_writes_exactly_the_upload_folder(workdir):
    run = make_run(workdir, "[jsonl, parquet, arrow]")
    result = publish(run, "someone/tiny", dry_run=True)
    folder = run / "publish"
    assert result["folder"] == folder and result["url"] is None
    assert files_under(folder) == result["files"] == sorted(
        ["README.md", "data.parquet", "baseline_random.parquet", "manifest.json", *PLOTS])
    card = DatasetCard.load(folder / "README.md")
    assert [c["data_files"][0]["path"] for c in card.data.configs] == ["data.parquet", "baseline_random.parquet"]
    assert 'load_dataset("someone/tiny", split="train")' in card.text
    assert (folder / "data.parquet").read_bytes() == (run / "data.parquet").read_bytes()
    # the published manifest names no machine paths
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [i["path"] for i in manifest["sources"]["general"]["inputs"]] == ["general.jsonl"]
    assert manifest["recipe"]["sources"]["general"]["path"] == "general.jsonl"
    assert str(workdir) not in (folder / "manifest.json").read_text() + (folder / "README.md").read_text()


def test_the_hub_loader_reads_the_folder_by_the_cards_configs(workdir):
    from datasets import load_dataset

    run = make_run(workdir, "[jsonl]")
    folder = publish(run, "someone/tiny", dry_run=True, out=workdir / "hub")["folder"]
    assert files_under(folder) == sorted(["README.md", "data.jsonl", "baseline_random.jsonl", "manifest.json", *PLOTS])
    ds = load_dataset(str(folder), split="train")
    baseline = load_dataset(str(folder), "random_baseline", split="train")
    manifest = json.loads((run / "manifest.json").read_text())
    assert len(ds) == manifest["totals"]["rows_out"] and len(baseline) == manifest["random_baseline"]["rows"]


def test_arrow_only_runs_publish_their_arrow_files(workdir):
    run = make_run(workdir, "[arrow]")
    files = publish(run, "someone/tiny", dry_run=True)["files"]
    assert [f for f in files if f.startswith(("data/", "baseline_random/"))] == [
        "baseline_random/data-00000-of-00001.arrow", "baseline_random/dataset_info.json", "baseline_random/state.json",
        "data/data-00000-of-00001.arrow", "data/dataset_info.json", "data/state.json"]
    card = DatasetCard.load(run / "publish" / "README.md")
    assert card.data.configs[0]["data_files"][0]["path"] == "data/*.arrow"


def test_rejects_only_on_request_and_reruns_replace_the_folder(workdir):
    run = make_run(workdir, "[parquet]")
    first = publish(run, "someone/tiny", dry_run=True, include_rejects=True)["files"]
    assert "rejects.jsonl" in first
    second = publish(run, "someone/tiny", dry_run=True)["files"]
    assert "rejects.jsonl" not in second and files_under(run / "publish") == second


def test_dry_run_refuses_a_folder_it_did_not_write(workdir):
    run = make_run(workdir, "[parquet]")
    (workdir / "mine").mkdir()
    (workdir / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(CurateError, match="holds files curate publish did not write"):
        publish(run, "someone/tiny", dry_run=True, out=workdir / "mine")
    assert (workdir / "mine" / "notes.txt").read_text() == "keep me"


def test_a_bad_repo_id_or_run_folder_is_a_clear_error(workdir):
    with pytest.raises(CurateError, match="owner/name"):
        publish(workdir, "no-slash", dry_run=True)
    with pytest.raises(CurateError, match="manifest.json is missing"):
        publish(workdir, "someone/tiny", dry_run=True)


def test_the_upload_sends_the_dry_run_folder(workdir, monkeypatch):
    import huggingface_hub

    run = make_run(workdir, "[jsonl, parquet]")
    expected = publish(run, "someone/tiny", dry_run=True, out=workdir / "dry")["files"]
    calls = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, **kw):
            calls["create"] = (repo_id, kw)

        def upload_folder(self, **kw):
            folder = Path(kw["folder_path"])
            calls["upload"] = dict(kw, files=files_under(folder),
                                   card=(folder / "README.md").read_bytes(), data=(folder / "data.parquet").read_bytes())
            return type("CommitInfo", (), {"commit_url": "https://huggingface.co/datasets/someone/tiny/commit/abc"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    result = publish(run, "someone/tiny", private=True)
    assert result["url"].endswith("/commit/abc")
    assert calls["create"] == ("someone/tiny", {"repo_type": "dataset", "private": True, "exist_ok": True})
    up = calls["upload"]
    assert up["repo_id"] == "someone/tiny" and up["repo_type"] == "dataset"
    assert up["files"] == expected
    assert up["card"] == (workdir / "dry" / "README.md").read_bytes()
    assert up["data"] == (workdir / "dry" / "data.parquet").read_bytes()


def test_no_network_is_one_clear_error(workdir, monkeypatch):
    import huggingface_hub

    run = make_run(workdir, "[parquet]")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    res = CliRunner().invoke(cli(), ["publish", str(run), "--repo", "someone/tiny"])
    assert res.exit_code == 2 and "nothing was uploaded" in res.output and "Traceback" not in res.output

    class Unreachable:
        def __init__(self, token=None):
            pass

        def create_repo(self, *a, **kw):
            raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "HfApi", Unreachable)
    with pytest.raises(CurateError, match=r"could not upload to the Hub \(ConnectionError: Name or service not known\)"):
        publish(run, "someone/tiny")


def test_publish_command_dry_run(workdir):
    run = make_run(workdir, "[parquet]")
    res = CliRunner().invoke(cli(), ["publish", str(run), "--repo", "someone/tiny", "--dry-run", "--out", "folder"])
    assert res.exit_code == 0, res.output
    assert "nothing uploaded" in res.output and "README.md" in res.output and "data.parquet" in res.output
    res = CliRunner().invoke(cli(), ["publish", str(run), "--repo", "someone/tiny", "--out", "folder"])
    assert res.exit_code == 2 and "--out only applies with --dry-run" in res.output
