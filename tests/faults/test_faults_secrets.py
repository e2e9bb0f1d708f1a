"""The judge's API key goes to the recipe's endpoint and nowhere else, and a bad reply never crashes."""

from __future__ import annotations

import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from curate.errors import CurateError
from curate.steps.score.judge import Judge
from tests.helpers import build, pairs_dataset, send_json

PAIR = ("What is a cat?", "A small domesticated feline kept as a pet.")


class _Server(BaseHTTPRequestHandler):
    """POST /redirect: 307 to the other server; POST /v1/chat/completions: a reply with `logprob`."""

    target: ClassVar[str] = ""
    logprob: ClassVar[object] = 0.0
    seen: ClassVar[list] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Server.seen.append((self.server.server_address[1], self.path, self.headers.get("Authorization")))
        if self.path.startswith("/redirect"):
            self.send_response(307)
            self.send_header("Location", _Server.target + "/chat/completions")
            self.end_headers()
            return
        entry = {"token": "4", "logprob": _Server.logprob, "top_logprobs": [{"token": "4", "logprob": _Server.logprob}]}
        send_json(self, {"choices": [{"message": {"content": "4"}, "logprobs": {"content": [entry]}}]})

    def log_message(self, *args):
        pass


@pytest.fixture
def servers():
    made = []
    for _ in range(2):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        made.append(server)
    _Server.seen = []
    urls = [f"http://127.0.0.1:{s.server_address[1]}" for s in made]
    _Server.target = urls[1] + "/v1"
    yield urls
    for s in made:
        s.shutdown()
        s.server_close()


def test_a_redirect_is_never_followed_with_the_key(servers, monkeypatch):
    monkeypatch.setenv("JUDGE_API_KEY", "sekrit")
    with pytest.raises(CurateError, match="redirected to .*does not follow redirects"):
        build(Judge, endpoint=servers[0] + "/redirect", api_key_env="JUDGE_API_KEY", cache_dir=None).score(
            pairs_dataset([PAIR]))
    ports = {port for port, _, _ in _Server.seen}
    assert ports == {int(servers[0].rsplit(":", 1)[1])}  # the other server never heard from us


@pytest.mark.parametrize("logprob, why", [
    (float("nan"), "invalid log-probability nan"),  # json writes NaN / Infinity, as careless servers do
    (float("inf"), "invalid log-probability inf"),
    (3.5, "invalid log-probability 3.5"),
    ("abc", "not a number: 'abc'"),
    (float("-inf"), "probability is on the ratings"),  # -inf is probability 0: valid, but no mass
])
def test_bad_log_probabilities_leave_the_row_unscored_with_the_reason(servers, logprob, why):
    _Server.logprob = logprob
    s = build(Judge, endpoint=servers[0] + "/v1", cache_dir=None, api_key_env=None).score(pairs_dataset([PAIR]))
    assert math.isnan(s["judge"][0]) and why in s["judge_why"][0]


def test_the_key_variable_must_look_like_an_api_key():
    for bad in ("AWS_SECRET_ACCESS_KEY", "DATABASE_URL", "HOME", "MY KEY"):
        with pytest.raises(ValueError, match="API_KEY or _TOKEN"):
            Judge.Params(endpoint="https://x.example/v1", api_key_env=bad)
    for good in ("OPENAI_API_KEY", "HF_TOKEN", "TOGETHER_API_KEY"):
        Judge.Params(endpoint="https://x.example/v1", api_key_env=good)


def test_the_key_never_goes_over_plain_http_to_another_host(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sekrit")
    with pytest.raises(CurateError, match="clear text over http"):
        build(Judge, endpoint="http://judge.example.com/v1", cache_dir=None).score(pairs_dataset([PAIR]))
