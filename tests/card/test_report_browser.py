"""The report in a real headless browser (Debian's chromium): it loads offline, the kept-rows table
searches and sorts, and the page makes no network request.

The browser is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON messages
ended by NUL on file descriptors 3 and 4, what Puppeteer and Playwright use), so the test needs
nothing beyond the standard library and the browser. Skipped when no chromium is installed, except
under CI=true, where that is a failure.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.io import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
# dup2 the two pipe ends onto 3 and 4 (above 9, so they cannot collide) and become the browser
SHIM = ("import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); "
        "os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_browser() -> str | None:
    override = os.environ.get("CURATE_CHROMIUM")
    if override:
        return override
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


@pytest.fixture(scope="module")
def browser_path():
    path = find_browser()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no chromium was found (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium found (apt-get install chromium); set CURATE_CHROMIUM to a browser binary")
    return path


class CDPError(RuntimeError):
    pass


class Chromium:
    """A headless chromium and one page, over the DevTools protocol on a pipe."""

    def __init__(self, exe: str, profile: Path, timeout: float = 30.0):
        self.timeout = timeout
        self._id = 0
        self.events: list[dict] = []
        self._buf = b""
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # the browser reads fd 3 and writes fd 4: a small Python shim puts the pipe ends there and execs it
        hi_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        hi_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (to_child_r, from_child_w):
            os.close(fd)
        args = ["--headless", "--remote-debugging-pipe", f"--user-data-dir={profile}", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", "about:blank"]
        # the page is our own local file; containers (and root) usually cannot give chromium its sandbox
        args.insert(0, "--no-sandbox")
        self.proc = subprocess.Popen([sys.executable, "-c", SHIM, str(hi_r), str(hi_w), exe, *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(hi_r, hi_w))
        os.close(hi_r)
        os.close(hi_w)
        self._w, self._r = to_child_w, from_child_r
        self.session = None
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable")

    # -- protocol ---------------------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError("timed out waiting for the browser")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise CDPError(f"the browser closed the pipe (exit code {self.proc.poll()})")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def js(self, expression: str):
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in res:
            raise CDPError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15.0):
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CDPError(f"timed out waiting for {expression}")
            time.sleep(0.05)

    # -- user actions -------------------------------------------------------------------------------

    def open(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        box = self.js(f"(function(){{var el=document.querySelector({json.dumps(selector)});el.scrollIntoView({{block:'center'}});"
                      "var r=el.getBoundingClientRect();return [r.left+r.width/2, r.top+r.height/2];})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})

    def type(self, selector: str, text: str) -> None:
        self.click(selector)
        self.call("Input.insertText", {"text": text})

    def key(self, key: str, code: str, vk: int) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": vk})

    def requests(self) -> list[str]:
        return [ev["params"]["request"]["url"] for ev in self.events if ev.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False)
        except (CDPError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quickstart_report(tmp_path_factory):
    from curate.card.report import write_report
    from curate.pipeline import run_recipe
    from curate.recipe import load_recipe

    out = tmp_path_factory.mktemp("report")
    recipe = load_recipe(ROOT / "recipes" / "quickstart.yaml", [f"outputs.dir={out}/run", "cache.enabled=false"])
    run_recipe(recipe)
    report = write_report(out / "run")
    return out / "run", report


@pytest.fixture
def page(browser_path, quickstart_report, tmp_path):
    run_dir, report = quickstart_report
    b = Chromium(browser_path, tmp_path / "profile")
    try:
        b.open(report.resolve().as_uri())
        b.wait_for("document.body && document.body.dataset.ready === '1'")
        yield b
    finally:
        b.close()


def haystack(row: dict) -> str:
    return "\n".join([row["id"], row["source"], *(m["content"] for m in row["messages"])]).lower()


VISIBLE_IDS = "Array.from(document.querySelectorAll('#rows tbody tr.row')).map(function(tr){return tr.dataset.id;})"


# -- tests ---------------------------------------------------------------------------------------------


def test_the_page_loads_offline_and_shows_every_section(page, quickstart_report):
    run_dir, _ = quickstart_report
    data = read_jsonl(run_dir / "data.jsonl")
    assert page.js("document.querySelectorAll('#rows tbody tr.row').length") == min(100, len(data))
    assert page.js("document.getElementById('count').textContent").startswith(f"{len(data)} of {len(data)} rows match")
    for section in ("funnel", "dropped", "scores", "kept", "duplicates"):
        assert page.js(f"!!document.getElementById('{section}')"), section
    # the plots are decoded images, not broken links
    assert page.js("Array.from(document.images).every(function(i){return i.complete && i.naturalWidth > 0;})")
    assert page.js("document.images.length") >= 2
    assert page.js("document.querySelectorAll('.cluster').length") > 0
    # nothing but the file itself and inline data was ever requested
    assert all(u.startswith(("file:", "data:")) for u in page.requests()), page.requests()


def test_search_filters_the_kept_rows(page, quickstart_report):
    run_dir, _ = quickstart_report
    data = read_jsonl(run_dir / "data.jsonl")
    for query in ("Energy", "WaTeR", "zzz-no-such-text", "the"):
        expected = [r["id"] for r in data if query.lower() in haystack(r)]
        page.js("(function(){var s=document.getElementById('search');s.value='';s.dispatchEvent(new Event('input'));})()")
        page.wait_for(f"document.getElementById('count').textContent.indexOf('{len(data)} of ') === 0")
        page.type("#search", query)
        page.wait_for(f"document.getElementById('count').textContent.indexOf('{len(expected)} of {len(data)} rows match') === 0")
        shown = page.js(VISIBLE_IDS)
        assert shown == expected[:100], query  # dataset order, every match and nothing else
    counts = [len([r for r in data if q in haystack(r)]) for q in ("energy", "water", "the")]
    assert 0 < counts[0] < counts[1] < 100 < counts[2] < len(data)  # the queries test what they should
    # "the" matches more than a page: the rest comes with "show more"
    assert page.js("document.getElementById('count').textContent").endswith("showing 100")
    page.click("#more")
    page.wait_for(f"document.querySelectorAll('#rows tbody tr.row').length === {counts[2]}")
    assert page.js("document.getElementById('more').hidden")


def test_typing_more_narrows_and_clearing_restores(page, quickstart_report):
    run_dir, _ = quickstart_report
    data = read_jsonl(run_dir / "data.jsonl")
    page.type("#search", "li")
    n1 = len([r for r in data if "li" in haystack(r)])
    page.wait_for(f"document.getElementById('count').textContent.indexOf('{n1} of ') === 0")
    page.type("#search", "ght")  # now "light"
    n2 = len([r for r in data if "light" in haystack(r)])
    page.wait_for(f"document.getElementById('count').textContent.indexOf('{n2} of ') === 0")
    assert page.js(VISIBLE_IDS) == [r["id"] for r in data if "light" in haystack(r)][:100]
    assert 0 < n2 < n1
    page.js("document.getElementById('search').select()")
    page.key("Backspace", "Backspace", 8)
    page.wait_for(f"document.getElementById('count').textContent.indexOf('{len(data)} of {len(data)}') === 0")


def test_sorting_by_a_score_column(page, quickstart_report):
    run_dir, _ = quickstart_report
    data = read_jsonl(run_dir / "data.jsonl")
    order = sorted(range(len(data)), key=lambda i: (-data[i]["response_words"], i))
    page.click('#rows th[data-key="response_words"]')  # numbers sort high to low first
    page.wait_for("document.querySelector('#rows th[data-key=\"response_words\"]').getAttribute('aria-sort') === 'descending'")
    assert page.js(VISIBLE_IDS) == [data[i]["id"] for i in order][:100]
    page.click('#rows th[data-key="response_words"]')
    page.wait_for("document.querySelector('#rows th[data-key=\"response_words\"]').getAttribute('aria-sort') === 'ascending'")
    asc = sorted(range(len(data)), key=lambda i: (data[i]["response_words"], i))
    assert page.js(VISIBLE_IDS) == [data[i]["id"] for i in asc][:100]


def test_a_click_on_a_row_shows_the_whole_conversation(page, quickstart_report):
    run_dir, _ = quickstart_report
    first = read_jsonl(run_dir / "data.jsonl")[0]
    page.click("#rows tbody tr.row")
    text = page.wait_for("(document.querySelector('#rows tbody tr.conv')||{}).textContent")
    assert first["messages"][-1]["content"] in text
