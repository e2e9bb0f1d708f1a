"""The command line: exit codes, messages without tracebacks, the funnel, validate and inspect."""

import json
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from curate.cli import app
from tests.test_pipeline import RECIPE, make_data

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    make_data(tmp_path)
    (tmp_path / "r.yaml").write_text(textwrap.dedent(RECIPE))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_run_prints_the_funnel_and_writes_outputs(workdir):
    res = runner.invoke(app, ["run", "r.yaml"])
    assert res.exit_code == 0, res.output
    assert "funnel: t" in res.output and "rows in 43 = out 20 + dropped 23" in res.output
    assert "exact duplicate (conversation)" in res.output
    assert (workdir / "out" / "data.jsonl").exists()


def test_a_rerun_says_what_it_kept_or_removed_from_the_run_folder(workdir):
    assert runner.invoke(app, ["run", "r.yaml"]).exit_code == 0
    (workdir / "out" / "train").mkdir()
    res = runner.invoke(app, ["run", "r.yaml"])
    assert res.exit_code == 0 and "kept train from the previous run" in res.output
    res = runner.invoke(app, ["run", "r.yaml", "--set", "seed=9"])
    assert res.exit_code == 0 and "removed train of the previous run" in res.output and "the data changed" in res.output
    assert not (workdir / "out" / "train").exists()


def test_bad_input_exits_2_with_a_message_and_no_traceback(workdir):
    (workdir / "bad.jsonl").write_text('{"instruction": "a", "output": "b"}\n{oops\n')
    proc = subprocess.run([sys.executable, "-m", "curate.cli", "run", "r.yaml", "--set", "sources.general.path=bad.jsonl",
                           "--set", "sources.general.on_error=fail"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "bad.jsonl:2: malformed JSON line" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (workdir / "out").exists()


def test_validate_reports_ok_or_the_field(workdir):
    res = runner.invoke(app, ["validate", "r.yaml"])
    assert res.exit_code == 0 and "ok" in res.output and "5 steps" in res.output
    res = runner.invoke(app, ["validate", "r.yaml", "--set", "steps.1.dedup.exact.key=promt"])
    assert res.exit_code == 2
    assert "steps[1].dedup.exact.key" in res.output and "promt" in res.output
    assert not (workdir / "out").exists()


def test_inspect_kept_and_dropped_rows(workdir):
    assert runner.invoke(app, ["run", "r.yaml"]).exit_code == 0
    res = runner.invoke(app, ["inspect", "out", "-n", "2"])
    assert res.exit_code == 0 and "20 rows match; showing 2" in res.output and "response_words=" in res.output
    res = runner.invoke(app, ["inspect", "out", "--step", "filter", "--json"])
    assert res.exit_code == 0 and "2 rows match" in res.output and "response_words" in res.output
    res = runner.invoke(app, ["inspect", "out", "--step", "filtr"])
    assert res.exit_code == 2 and "did you mean 'filter'" in res.output
    res = runner.invoke(app, ["inspect", str(workdir)])
    assert res.exit_code == 2 and "manifest.json is missing" in res.output


def test_inspect_rejects_a_newer_format(workdir):
    assert runner.invoke(app, ["run", "r.yaml"]).exit_code == 0
    m = json.loads((workdir / "out" / "manifest.json").read_text())
    m["format_version"] = 99
    (workdir / "out" / "manifest.json").write_text(json.dumps(m))
    res = runner.invoke(app, ["inspect", "out"])
    assert res.exit_code == 2 and "newer curate" in res.output


def test_steps_lists_every_registered_step():
    res = runner.invoke(app, ["steps"])
    assert res.exit_code == 0
    for name in ("clean.text", "score.heuristics", "filter.threshold", "dedup.exact", "select.top_k", "select.random"):
        assert name in res.output
    assert "also named" in res.output and "decontaminate" in res.output  # the older names, beside the new ones


def test_a_step_is_named_by_its_file_and_keeps_its_older_name():
    import pytest

    from curate.steps.registry import aliases, canonical_name, get_step, register, step_names
    from curate.steps.base import Transform

    assert aliases() == {"clean": "clean.text", "decontaminate": "filter.decontaminate", "embed": "score.embed",
                         "filter": "filter.threshold", "task": "task.apply"}
    for name in step_names():  # every name is the step's module under curate/steps
        assert get_step(name).__module__ == f"curate.steps.{name}"
    assert get_step("clean") is get_step("clean.text") and canonical_name("filter") == "filter.threshold"
    assert canonical_name("dedup.exact") == "dedup.exact"

    class Misnamed(Transform):
        name = "clean.tidy"

    Misnamed.__module__ = "curate.steps.clean.text"
    with pytest.raises(RuntimeError, match="module path under curate/steps \\('clean.text'\\)"):
        register(Misnamed)

    class Taken(Transform):
        name = "clean.other"
        aliases = ("filter",)

    Taken.__module__ = "curate.steps.clean.other"
    with pytest.raises(RuntimeError, match="two steps are registered as 'filter'"):
        register(Taken)
    assert "clean.other" not in step_names()


def test_messages_keep_their_brackets(capsys, workdir):
    from curate.cli import print_progress

    print_progress("[subset seed 0] step 10: loss 1.0")
    assert "[subset seed 0] step 10: loss 1.0" in capsys.readouterr().err
    res = runner.invoke(app, ["run", "r.yaml", "--set", "steps.4.select.random.rows='[bold]x'"])
    assert res.exit_code == 2 and "[bold]x" in res.output  # rich would take it for a style tag
