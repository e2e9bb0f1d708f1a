"""`score.judge`'s client for an OpenAI-compatible chat endpoint (not a step): one request per row,
the rating read from the top log-probabilities of the first rating token, and the API key kept safe
(never over plain http except to a loopback address, never along a redirect)."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request

RATINGS = (1, 2, 3, 4, 5)


def safe_for_key(url: str) -> bool:
    """May the API key be sent to `url`: over https, or over http to a loopback address."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.hostname or "") in ("localhost", "127.0.0.1", "::1")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would re-send the Authorization header to wherever the server points: refuse them all."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, f"redirected to {newurl}; curate does not follow "
                                     "redirects (the API key would go along): set endpoint to the final URL",
                                     headers, fp)


_OPENER = urllib.request.build_opener(_NoRedirect)


def ask_endpoint(url: str, model: str, messages: list[dict], key: str | None, timeout: float) -> dict:
    """One chat completion: {"probs": {rating: p}, "text": ...}, or {"text": ...}, or {"transport": error},
    or {"invalid": why} when a log-probability is not a number <= 0."""
    body = {"model": model, "messages": messages, "temperature": 0, "max_tokens": 8, "logprobs": True, "top_logprobs": 20}
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    for attempt in range(2):
        req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with _OPENER.open(req, timeout=timeout) as r:
                reply = json.loads(r.read().decode("utf-8"))
            break
        except urllib.error.HTTPError as e:
            if e.code == 400 and attempt == 0 and "logprobs" in body:
                body.pop("logprobs")  # some servers refuse the logprobs options: ask again without them
                body.pop("top_logprobs")
                continue
            return {"transport": f"HTTP {e.code} {e.reason}"}
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as e:
            return {"transport": f"{type(e).__name__}: {getattr(e, 'reason', e)}"}
    try:
        choice = reply["choices"][0]
        text = (choice.get("message") or {}).get("content") or ""
    except (KeyError, IndexError, TypeError):
        return {"transport": "the reply has no choices[0].message"}
    try:
        probs = _rating_probs((choice.get("logprobs") or {}).get("content") or [])
    except ValueError as e:
        return {"invalid": str(e)}
    return {"probs": probs, "text": text} if probs else {"text": text}


def _logprob(value) -> float:
    """A log-probability from a reply: a finite number <= 0 (a rounding error above 0 counts as 0)."""
    try:
        lp = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the endpoint gave a log-probability that is not a number: {value!r}") from None
    if math.isnan(lp) or lp > 1e-6:  # -inf is a probability of 0; NaN, +inf and positive values are no log-probability
        raise ValueError(f"the endpoint gave an invalid log-probability {value!r} (must be a number <= 0)")
    return min(lp, 0.0)


def _rating_probs(content: list) -> dict[str, float] | None:
    """p(rating) from the top log-probabilities at the first generated token that is a rating."""
    for entry in content:
        if not isinstance(entry, dict) or str(entry.get("token", "")).strip() not in {str(k) for k in RATINGS}:
            continue
        probs: dict[str, float] = {}
        seen = set()
        for alt in (entry.get("top_logprobs") or []) + [entry]:
            tok, lp = str(alt.get("token", "")), alt.get("logprob")
            if tok in seen or lp is None:
                continue
            seen.add(tok)
            if tok.strip() in {str(k) for k in RATINGS}:
                probs[tok.strip()] = probs.get(tok.strip(), 0.0) + math.exp(_logprob(lp))
        return probs or None
    return None
