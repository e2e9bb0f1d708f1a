"""The canonical row and the texts steps look at.

A row is `{id, source, messages, meta}` plus score columns. `messages` is a list of `{role, content}`
with roles system/user/assistant; `meta` is stored as a JSON string so that sources with different
metadata can share one Arrow table (jsonl outputs decode it back into an object).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

ROLES = ("system", "user", "assistant")
CANONICAL_COLUMNS = ("id", "source", "messages", "meta")

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFC, lower case, whitespace collapsed: the form used for ids and exact matching."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip().lower()


def row_id(messages: list[dict]) -> str:
    """Stable id: a hash of the normalised conversation (same conversation, same id, in any source)."""
    payload = json.dumps([[m["role"], normalise(m["content"])] for m in messages], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def prompt_text(messages: list[dict]) -> str:
    """Everything before the last assistant turn (system, user and earlier turns)."""
    last = last_assistant_index(messages)
    return "\n".join(m["content"] for m in messages[:last])


def response_text(messages: list[dict]) -> str:
    """The last assistant turn: the answer the row teaches."""
    last = last_assistant_index(messages)
    return messages[last]["content"] if last < len(messages) else ""


def first_user_text(messages: list[dict]) -> str:
    return next((m["content"] for m in messages if m["role"] == "user"), "")


def conversation_text(messages: list[dict]) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def last_assistant_index(messages: list[dict]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] == "assistant":
            return i
    return len(messages)


# What a step can be asked to look at; `key` parameters in recipes take these names.
TEXT_KEYS = {
    "prompt": prompt_text,
    "response": response_text,
    "conversation": conversation_text,
    "first_user": first_user_text,
}


def text_of(messages: list[dict], key: str) -> str:
    return TEXT_KEYS[key](messages)


def make_row(source: str, messages: list[dict], meta: dict) -> dict:
    meta_json = json.dumps(meta, ensure_ascii=False, sort_keys=True)
    meta_json.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate, as row_id does for the messages
    return {"id": row_id(messages), "source": source, "messages": messages, "meta": meta_json}
