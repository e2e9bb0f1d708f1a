"""The HTML report without a browser: one self-contained file (nothing fetched at view time), every
section present, the rows embedded as JSON that survives hostile text. tests/card/test_report_browser.py
drives it in a real browser."""

from __future__ import annotations

import json
import re
import textwrap
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from curate.card.report import write_report
from curate.errors import CurateError
from curate.io import read_jsonl
from curate.pipeline import run_recipe
from curate.recipe import load_recipe
from tests.test_pipeline import RECIPE, make_data

HOSTILE = '</script><script>document.title="pwned"</script> <!-- & \u2028 <img src=x onerror=alert(1)>'


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    make_data(tmp_path)
    rows = [{"instruction": f"Explain the hostile text number {i}.", "input": "", "output": f"{HOSTILE} reply {i} words here"}
            for i in range(3)]
    with open(tmp_path / "general.jsonl", "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "r.yaml").write_text(textwrap.dedent(RECIPE).replace("select.random: {rows: 20}", "select.random: {rows: 25}"))
    monkeypatch.chdir(tmp_path)
    run_recipe(load_recipe("r.yaml"))
    return tmp_path / "out"


class Scripts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self._in, self.tags = [], None, []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in = dict(attrs)
            self.scripts.append([self._in, ""])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in = None

    def handle_data(self, data):
        if self._in is not None:
            self.scripts[-1][1] += data


def test_the_report_is_one_self_contained_file(run_dir):
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    html = path.read_text(encoding="utf-8")
    parser = Scripts()
    parser.feed(html)
    # nothing is loaded from anywhere: no external script, stylesheet, image, font or frame
    for tag, attrs in parser.tags:
        for attr in ("src", "href"):
            value = attrs.get(attr)
            if value is not None:
                assert value.startswith(("#", "data:")), (tag, attr, value[:80])
        assert tag not in ("link", "iframe", "object", "embed"), tag
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html  # and the page forbids itself any request
    for section in ("funnel", "dropped", "scores", "kept", "duplicates"):
        assert f'id="{section}"' in html


def test_the_rows_survive_hostile_text(run_dir):
    html = write_report(run_dir).read_text(encoding="utf-8")
    parser = Scripts()
    parser.feed(html)
    data_scripts = [body for attrs, body in parser.scripts if attrs.get("type") == "application/json"]
    code_scripts = [body for attrs, body in parser.scripts if attrs.get("type") is None]
    assert len(data_scripts) == 1 and len(code_scripts) == 1  # the hostile text opened no script of its own
    payload = json.loads(data_scripts[0])
    kept = read_jsonl(run_dir / "data.jsonl")
    assert payload["total"] == len(kept) == len(payload["rows"])
    assert [r["id"] for r in payload["rows"]] == [r["id"] for r in kept]
    hostile = [r for r in payload["rows"] if any(HOSTILE in m[1] for m in r["m"])]
    assert hostile, "the hostile rows should be among the kept rows"
    assert "<img src=x" not in html  # escaped wherever it is shown as HTML


def test_max_rows_caps_the_embedded_rows(run_dir, tmp_path):
    html = write_report(run_dir, tmp_path / "r.html", max_rows=5).read_text(encoding="utf-8")
    parser = Scripts()
    parser.feed(html)
    payload = json.loads(next(body for attrs, body in parser.scripts if attrs.get("type") == "application/json"))
    assert len(payload["rows"]) == 5 and payload["total"] == 25
    assert "holds the first 5 of 25 kept rows" in html


def test_the_funnel_and_drops_match_the_manifest(run_dir):
    html = write_report(run_dir).read_text(encoding="utf-8")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    t = manifest["totals"]
    assert f"rows in {t['rows_in']:,} = rows out {t['rows_out']:,} + dropped {t['dropped']:,}" in html
    for step in manifest["steps"]:
        if step["dropped"]:
            assert f"<code>{step['label']}</code> dropped {step['dropped']:,} of {step['rows_in']:,} rows" in html
    assert "malformed JSON" in html  # the load stage shows the skipped line's reason
    assert len(re.findall(r'class="cluster"', html)) == 1  # the one exact duplicate, beside its kept row


def test_report_command_and_errors(run_dir, tmp_path):
    import typer

    from curate.card.cli import register

    app = typer.Typer()
    register(app)
    res = CliRunner().invoke(app, ["report", str(run_dir), "--out", str(tmp_path / "x.html")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "x.html").is_file() and "opens offline" in res.output
    res = CliRunner().invoke(app, ["report", str(tmp_path / "none")])
    assert res.exit_code == 2 and "manifest.json is missing" in res.output
    with pytest.raises(CurateError, match="manifest.json is missing"):
        write_report(tmp_path)
