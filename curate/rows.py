"""The canonical row and the texts steps look at.

A row is `{id, source, messages, meta}` plus score columns. `messages` is a list of `{role, content}`
with roles system/user/assistant; `meta` is stored as a JSON string so that sources with different
metadata can share one Arrow table (jsonl outputs decode it back into an object).
"""

from __future__ import annotations

import hashlib
import unicodedata
from json.encoder import encode_basestring as _json_string

from curate.io import json_encoder

ROLES = ("system", "user", "assistant")
CANONICAL_COLUMNS = ("id", "source", "messages", "meta")



def normalise(text: str) -> str:
    """NFC, lower case, whitespace collapsed: the form used for ids and exact matching.

    str.split() splits on exactly the characters `\\s` matches in a str regex, and neither NFC nor lower()
    makes or removes whitespace, so this equals `re.sub(r"\\s+", " ", nfc).strip().lower()`, ~3x faster.
    ASCII text (NFC already) takes bytes.translate and replace: 1.3x faster again on the pool's turns, 3x
    on a long one (tests/steps/dedup/test_dedup.py checks both roads against the regex).
    """
    if text.isascii():  # one bytes pass maps whitespace to spaces and folds case; runs of spaces halve per replace
        spaced = text.encode("ascii").translate(_ASCII_FOLD)
        while b"  " in spaced:
            spaced = spaced.replace(b"  ", b" ")
        return spaced.strip(b" ").decode("ascii")
    return " ".join(unicodedata.normalize("NFC", text).split()).lower()


_ASCII_FOLD = bytes(32 if c < 128 and chr(c).isspace() else c + 32 if 65 <= c <= 90 else c for c in range(256))


def row_id(messages: list[dict]) -> str:
    """Stable id: a hash of the normalised conversation (same conversation, same id, in any source).
    The hashed text is `json.dumps([[role, normalised content], ...], ensure_ascii=False)`, written out
    with the json module's own string encoder (the same bytes, without the encoder's per-call set-up)."""
    payload = "[" + ", ".join(f'[{_json_string(m["role"])}, {_json_string(normalise(m["content"]))}]' for m in messages) + "]"
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


# json.dumps(meta, ensure_ascii=False, sort_keys=True), 3x faster (curate.io.json_encoder)
encode_meta = json_encoder(sort_keys=True)


def make_row(source: str, messages: list[dict], meta: dict) -> dict:
    meta_json = encode_meta(meta)
    meta_json.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate, as row_id does for the messages
    return {"id": row_id(messages), "source": source, "messages": messages, "meta": meta_json}
