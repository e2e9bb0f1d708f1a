"""GSM8K: greedy generation, exact match of the final number.

The prediction is the first number after the last `####` when the model writes one (GSM8K's own answer
format), else the last number in its reply; "1,234", "$1234.00" and "1234." all read as 1234. It matches when it
equals the reference's final answer as a number.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def extract_number(text: str) -> str | None:
    """The final number of a reply, normalised ("1,234.50" -> "1234.5"), or None."""
    if text is None:
        return None
    if "####" in text:
        after = _NUMBER.findall(text.rsplit("####", 1)[1])
        if after:
            return normalise_number(after[0])
    found = _NUMBER.findall(text)
    return normalise_number(found[-1]) if found else None


def normalise_number(s: str) -> str | None:
    s = s.replace(",", "").replace("$", "").replace(" ", "").strip().rstrip(".")
    try:
        value = float(s)
    except ValueError:
        return None
    if value == int(value):
        return str(int(value))
    return repr(value).rstrip("0").rstrip(".")


def numbers_match(prediction: str | None, gold: str | None) -> bool:
    if prediction is None or gold is None:
        return False
    a, b = normalise_number(prediction), normalise_number(gold)
    if a is None or b is None:
        return False
    return abs(float(a) - float(b)) < 1e-9


def evaluate_gsm8k(model, tokenizer, fmt, rows: list[dict], *, max_new_tokens: int, batch_size: int = 8) -> dict:
    """`{"exact_match", "n", "answered", "examples"}` for rows of the `qa` source format."""
    from curate.evals.data import prompt_messages
    from curate.evals.generation import generate

    prompts = [fmt.prompt(prompt_messages(r)) for r in rows]
    outputs = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    preds = [extract_number(o) for o in outputs]
    golds = [str(r["meta"]["final_answer"]) for r in rows]
    hits = [numbers_match(p, g) for p, g in zip(preds, golds)]
    return {
        "exact_match": round(sum(hits) / len(hits), 6) if hits else None,
        "n": len(rows),
        "answered": sum(p is not None for p in preds),
        "items": {"exact_match": [1.0 if h else 0.0 for h in hits]},
        "examples": [{"question": r["meta"].get("question", "")[:200], "output": o[-300:], "prediction": p, "gold": g}
                     for r, o, p, g in list(zip(rows, outputs, preds, golds))[:3]],
    }
