"""Format adapters: one raw record in, one canonical conversation out.

Each adapter names the columns it needs, so `format: auto` can pick one by the columns present, and
raises RowError (a message without a location; the loader adds file and line) for a missing or
wrongly typed field. Fields an adapter does not use and that hold plain values (ids, topics) are kept
in `meta`, so nothing the source said about a row is lost.
"""

from __future__ import annotations

from typing import Any, ClassVar

from curate.errors import CurateError, did_you_mean
from curate.strict import StrictModel


class RowError(ValueError):
    """A record that does not fit its format."""


class Options(StrictModel):
    """A format's options (`options:` of a source); each format subclasses it with its own fields."""


def field(record: dict, name: str, *, required: bool = True, kind=str) -> Any:
    """record[name] (a dotted path reaches into nested objects and lists: `instances.0.output`)."""
    value: Any = record
    for part in name.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            value = None
            break
    if value is None:
        if required:
            raise RowError(f"field {name!r} is missing")
        return None
    if kind is not None and not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise RowError(f"field {name!r} must be {expected}, got {type(value).__name__} {_short(value)}")
    return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def plain_meta(record: dict, used: set[str]) -> dict:
    """The record's other plain-valued fields: ids, names, topics."""
    return {
        k: v for k, v in record.items()
        if k not in used and (v is None or isinstance(v, (str, int, float, bool)))
    }


def turn(role: str, content: str) -> dict:
    return {"role": role, "content": content}


class Adapter:
    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()  # columns whose presence makes `auto` choose this adapter
    Options: ClassVar[type[Options]] = Options

    def __init__(self, options: Options):
        self.options = options

    @classmethod
    def detect(cls, columns: set[str]) -> bool:
        return bool(cls.needs) and set(cls.needs) <= columns

    def convert(self, record: dict) -> tuple[list[dict], dict]:
        raise NotImplementedError


class AlpacaOptions(Options):
    join: str = "\n\n"  # between instruction and input


class Alpaca(Adapter):
    """instruction / input / output, optional system and history ([[user, assistant], ...])."""

    name = "alpaca"
    needs = ("instruction", "output")
    Options = AlpacaOptions

    def convert(self, record):
        instruction = field(record, "instruction")
        extra = field(record, "input", required=False)
        output = field(record, "output")
        messages = []
        system = field(record, "system", required=False)
        if system:
            messages.append(turn("system", system))
        for i, pair in enumerate(field(record, "history", required=False, kind=list) or []):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                raise RowError(f"history[{i}] must be a [user, assistant] pair of strings, got {_short(pair)}")
            messages += [turn("user", pair[0]), turn("assistant", pair[1])]
        prompt = instruction + (self.options.join + extra if extra else "")
        messages += [turn("user", prompt), turn("assistant", output)]
        return messages, plain_meta(record, {"instruction", "input", "output", "system", "history"})


class ShareGPTOptions(Options):
    column: str = "conversations"
    role_key: str = "from"
    content_key: str = "value"


SHAREGPT_ROLES = {
    "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
    "bard": "assistant", "bing": "assistant", "model": "assistant", "system": "system",
}


class ShareGPT(Adapter):
    """`conversations`: a list of {from, value} turns (human/gpt/system), or a list of plain strings
    that alternate user and assistant (as GAIR/lima on the hub)."""

    name = "sharegpt"
    needs = ("conversations",)
    Options = ShareGPTOptions

    def convert(self, record):
        o = self.options
        turns = field(record, o.column, kind=list)
        messages = []
        for i, t in enumerate(turns):
            if isinstance(t, str):
                messages.append(turn("user" if len(messages) % 2 == 0 else "assistant", t))
                continue
            if not isinstance(t, dict):
                raise RowError(f"{o.column}[{i}] must be an object or a string, got {_short(t)}")
            speaker = field(t, o.role_key)
            role = SHAREGPT_ROLES.get(speaker.lower())
            if role is None:
                raise RowError(f"{o.column}[{i}].{o.role_key}: unknown speaker {speaker!r}; known: {sorted(SHAREGPT_ROLES)}")
            messages.append(turn(role, field(t, o.content_key)))
        return messages, plain_meta(record, {o.column})


class MessagesOptions(Options):
    column: str = "messages"


class OpenAIMessages(Adapter):
    """`messages`: a list of {role, content} (the OpenAI / HF chat format)."""

    name = "openai"
    needs = ("messages",)
    Options = MessagesOptions

    def convert(self, record):
        col = self.options.column
        messages = []
        for i, m in enumerate(field(record, col, kind=list)):
            if not isinstance(m, dict):
                raise RowError(f"{col}[{i}] must be an object, got {_short(m)}")
            role = field(m, "role")
            if role not in ("system", "user", "assistant"):
                raise RowError(f"{col}[{i}].role: {role!r} is not system, user or assistant")
            messages.append(turn(role, field(m, "content")))
        return messages, plain_meta(record, {col})


class PromptCompletionOptions(Options):
    prompt: str = "prompt"
    completion: str = "completion"
    system: str | None = None


class PromptCompletion(Adapter):
    """prompt / completion (a system column optional)."""

    name = "prompt_completion"
    needs = ("prompt", "completion")
    Options = PromptCompletionOptions

    def convert(self, record):
        o = self.options
        messages = []
        if o.system and field(record, o.system, required=False):
            messages.append(turn("system", field(record, o.system)))
        messages += [turn("user", field(record, o.prompt)), turn("assistant", field(record, o.completion))]
        return messages, plain_meta(record, {o.prompt, o.completion, o.system})


class QAOptions(Options):
    question: str = "question"
    answer: str = "answer"
    final_answer_marker: str | None = "####"  # GSM8K: the text after it is kept as meta.final_answer


class QuestionAnswer(Adapter):
    """question / answer (GSM8K's worked answers end in `#### N`: N goes to meta.final_answer)."""

    name = "qa"
    needs = ("question", "answer")
    Options = QAOptions

    def convert(self, record):
        o = self.options
        question, answer = field(record, o.question), field(record, o.answer, kind=(str, int, float))
        answer = str(answer)
        meta = plain_meta(record, {o.question, o.answer})
        meta.update(question=question, answer=answer)
        if o.final_answer_marker and o.final_answer_marker in answer:
            meta["final_answer"] = answer.rsplit(o.final_answer_marker, 1)[1].strip()
        return [turn("user", question), turn("assistant", answer)], meta


class MultipleChoiceOptions(Options):
    question: str = "question"
    answer_style: str = "letter_text"  # "letter" (B) or "letter_text" (B. the option's text)
    instruction: str = "Answer with the letter of the correct option."


LETTERS = "ABCDEFGHIJ"


class MultipleChoice(Adapter):
    """A question with lettered options and an answer key.

    Choices come as ARC's `choices: {text: [...], label: [...]}`, a plain list `choices: [...]`, or
    columns A, B, C, D (MMLU's headerless csv, with `csv_columns: [question, A, B, C, D, answer]`).
    The key is `answerKey` or `answer`: a letter, a label, or a 0-based index.
    """

    name = "multiple_choice"
    Options = MultipleChoiceOptions

    @classmethod
    def detect(cls, columns):
        has_choices = "choices" in columns or {"A", "B", "C", "D"} <= columns
        return "question" in columns and has_choices and bool({"answer", "answerKey"} & columns)

    def convert(self, record):
        o = self.options
        question = field(record, o.question)
        labels, texts = self._choices(record)
        key = record.get("answerKey", record.get("answer"))
        if key is None:
            raise RowError("field 'answerKey' (or 'answer') is missing")
        # A label first (ARC uses "A".."D" and sometimes "1".."4"), else a 0-based index (cais/mmlu).
        if str(key) in labels:
            index = labels.index(str(key))
        elif isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            index = int(key)
        else:
            raise RowError(f"answer key {key!r} is not one of the option labels {labels}")
        if not 0 <= index < len(texts):
            raise RowError(f"answer index {key!r} is out of range for {len(texts)} options")
        letters = [LETTERS[i] for i in range(len(texts))]
        options_text = "\n".join(f"{letters[i]}. {t}" for i, t in enumerate(texts))
        user = f"{question}\n\n{options_text}" + (f"\n\n{o.instruction}" if o.instruction else "")
        answer = letters[index] if o.answer_style == "letter" else f"{letters[index]}. {texts[index]}"
        meta = plain_meta(record, {o.question, "choices", "answerKey", "answer", *LETTERS})
        # The structured fields stay in meta, so task templates can re-phrase the row later.
        meta.update(question=question, choices=texts, answer_index=index, answer_letter=letters[index],
                    answer_text=texts[index])
        return [turn("user", user), turn("assistant", answer)], meta

    @staticmethod
    def _choices(record) -> tuple[list[str], list[str]]:
        choices = record.get("choices")
        if isinstance(choices, dict):
            texts, labels = field(choices, "text", kind=list), field(choices, "label", kind=list)
            if len(texts) != len(labels):
                raise RowError("choices.text and choices.label differ in length")
        elif isinstance(choices, list):
            texts, labels = choices, [LETTERS[i] for i in range(len(choices))]
        else:
            texts = [record[c] for c in LETTERS if c in record and record[c] is not None]
            labels = [LETTERS[i] for i in range(len(texts))]
        if len(texts) < 2:
            raise RowError("a multiple-choice row needs at least two options")
        return [str(t) for t in labels], [str(t) for t in texts]


class ColumnsOptions(Options):
    prompt: str  # the user turn (dotted paths reach into nested fields: instances.0.input)
    response: str  # the assistant turn
    input: str | None = None  # appended to the prompt after `join` when present
    system: str | None = None
    join: str = "\n\n"
    meta: list[str] = []  # extra fields to copy into meta (plain fields are kept anyway)


class Columns(Adapter):
    """An explicit mapping from any columns to system / prompt (+ input) / response."""

    name = "columns"
    Options = ColumnsOptions

    @classmethod
    def detect(cls, columns):
        return False  # only when asked for by name: a mapping cannot be guessed

    def convert(self, record):
        o = self.options
        prompt = field(record, o.prompt)
        extra = field(record, o.input, required=False) if o.input else None
        messages = []
        if o.system and field(record, o.system, required=False):
            messages.append(turn("system", field(record, o.system)))
        messages += [turn("user", prompt + (o.join + extra if extra else "")), turn("assistant", field(record, o.response))]
        used = {p.split(".")[0] for p in (o.prompt, o.response, o.input, o.system) if p}
        meta = plain_meta(record, used)
        for name in o.meta:
            meta[name] = field(record, name, required=False, kind=None)
        return messages, meta


# Order matters for `auto`: the first adapter whose columns are present wins.
ADAPTERS: dict[str, type[Adapter]] = {
    a.name: a for a in (OpenAIMessages, ShareGPT, Alpaca, PromptCompletion, MultipleChoice, QuestionAnswer, Columns)
}


def get_adapter(name: str, where: str | None = None) -> type[Adapter]:
    if name not in ADAPTERS:
        raise CurateError(f"unknown format {name!r}{did_you_mean(name, ADAPTERS)}; choose from {['auto', *ADAPTERS]}", where)
    return ADAPTERS[name]


def detect_adapter(columns: set[str], where: str) -> type[Adapter]:
    for adapter in ADAPTERS.values():
        if adapter.detect(columns):
            return adapter
    raise CurateError(
        f"cannot tell the format from the columns {sorted(columns)}; set `format:` to one of "
        f"{list(ADAPTERS)} (`columns` maps any fields: prompt, response, input, system)",
        where,
    )


def check_messages(messages: list[dict]) -> None:
    """A usable conversation: at least one user turn and an assistant turn at the end."""
    if not any(m["role"] == "user" for m in messages):
        raise RowError("the conversation has no user turn")
    if messages[-1]["role"] != "assistant":
        raise RowError("the conversation does not end with an assistant turn")
