"""The `task` step: shipped task libraries on real rows (ARC, MMLU, GSM8K), seeded phrasing assignment,
few-shot examples, the `sources` filter, user libraries, and every kind of bad input."""

from __future__ import annotations

import json
import textwrap

import pytest
from datasets import Dataset
from pydantic import ValidationError

from curate.errors import CurateError
from curate.specs.source import Source
from curate.rows import make_row
from curate.sources.load import load_source
from curate.steps.task.apply import TaskTemplates
from curate.steps.task.library import shipped_tasks
from tests.helpers import apply_step, context, pairs_dataset

MMLU_COLUMNS = ["question", "A", "B", "C", "D", "answer"]


def step(seed=0, recipe_dir=".", **params) -> TaskTemplates:
    return TaskTemplates(TaskTemplates.Params(**params), context("task", seed, recipe_dir))


def apply(ds, seed=0, recipe_dir=".", **params) -> tuple[Dataset, dict]:
    s = step(seed, recipe_dir, **params)
    out = apply_step(s, ds)
    return out, s.ctx.notes


def rows_of(name, path, **kw) -> list[dict]:
    return load_source(name, Source(path=str(path), **kw)).rows


def turns(row) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in row["messages"]]


def meta(row) -> dict:
    return json.loads(row["meta"])


def assignment(ds) -> dict[str, str]:
    return {r["id"]: meta(r)["task_template"] for r in ds.to_list()}


def row(source="s", user=None, assistant="a", **fields) -> dict:
    """A canonical row with these meta fields (its user turn, by default, spells them: ids differ)."""
    user = json.dumps(fields, sort_keys=True) if user is None else user
    return make_row(source, [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}], fields)


def write_library(path, phrasings: str, extra: str = ""):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "task: mine\ndescription: a test library\n" + textwrap.dedent(extra) + "phrasings:\n" + textwrap.indent(textwrap.dedent(phrasings), "  ")
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def arc(shared_data) -> Dataset:
    return Dataset.from_list(rows_of("arc", shared_data / "arc_easy_train.json", limit=20))


@pytest.fixture
def gsm8k(shared_data) -> Dataset:
    return Dataset.from_list(rows_of("gsm8k", shared_data / "gsm8k_train.jsonl", limit=20))


# -- the shipped libraries on real rows --------------------------------------------------------------


def test_shipped_libraries():
    assert shipped_tasks() == ["classify", "math", "multiple_choice", "qa", "summarise"]
    for task in shipped_tasks():
        lib = step(task=task).library
        assert lib.spec.task == task and lib.spec.fields and 4 <= len(lib.phrasings) <= 6, task


ARC_0_USER = (
    "Which factor will most likely cause a person to develop a fever?\n\n"
    "A. a leg muscle relaxing after exercise\n"
    "B. a bacterial population in the bloodstream\n"
    "C. several viral particles on the skin\n"
    "D. carbohydrates being digested in the stomach\n\n"
)


def test_arc_multiple_choice_letter_and_letter_text(arc):
    out, notes = apply(arc, task="multiple_choice", phrasings=["question_options"])
    assert turns(out[0]) == [
        ("user", ARC_0_USER + "Answer with the letter and the text of the correct option."),
        ("assistant", "B. a bacterial population in the bloodstream"),
    ]
    assert meta(out[0])["task_template"] == "question_options" and meta(out[0])["id"] == "Mercury_7220990"
    assert notes["phrasings"] == {"question_options": 20} and notes["rows_templated"] == 20
    out, _ = apply(arc, task="multiple_choice", phrasings=["question_options"], variables={"answer_style": "letter"})
    assert turns(out[0]) == [("user", ARC_0_USER + "Answer with the letter of the correct option."), ("assistant", "B")]
    assert out["id"] == arc["id"]  # a transform keeps the rows and their ids


def test_arc_other_layouts(arc):
    out, _ = apply(arc, task="multiple_choice", phrasings=["choose_from"])
    assert turns(out[0]) == [
        ("user", ("Which factor will most likely cause a person to develop a fever?\nChoose from: "
                 "(A) a leg muscle relaxing after exercise (B) a bacterial population in the bloodstream "
                 "(C) several viral particles on the skin (D) carbohydrates being digested in the stomach")),
        ("assistant", "(B) a bacterial population in the bloodstream"),
    ]
    out, _ = apply(arc, task="multiple_choice", phrasings=["tutor_system"], variables={"answer_style": "letter"})
    system, user, assistant = turns(out[0])
    assert system == ("system", ("You are a knowledgeable tutor. For each multiple-choice question, reply with the "
                                "correct option's letter only."))
    assert user == ("user", ARC_0_USER.rstrip()) and assistant == ("assistant", "B")


def test_mmlu_csv_exam_style(shared_data):
    ds = Dataset.from_list(rows_of("mmlu", shared_data / "mmlu" / "val" / "astronomy_val.csv", csv_columns=MMLU_COLUMNS))
    out, _ = apply(ds, task="multiple_choice", phrasings=["exam_style"], variables={"answer_style": "letter"})
    assert turns(out[0]) == [
        ("user", ("Question: You cool a blackbody to half its original temperature. How does its spectrum change?\n"
                 "A. Power emitted is 1/16 times as high; peak emission wavelength is 1/2 as long.\n"
                 "B. Power emitted is 1/4 times as high; peak emission wavelength is 2 times longer.\n"
                 "C. Power emitted is 1/4 times as high; peak emission wavelength is 1/2 as long.\n"
                 "D. Power emitted is 1/16 times as high; peak emission wavelength is 2 times longer.\n"
                 "Answer:")),
        ("assistant", "D"),
    ]
    # a `subject` field (cais/mmlu on the hub) is named when present
    with_subject = Dataset.from_list([row(question="2+2?", choices=["3", "4"], answer_letter="B", answer_text="4",
                                          subject="elementary_mathematics")])
    out, _ = apply(with_subject, task="multiple_choice", phrasings=["exam_style"])
    assert turns(out[0])[0][1] == ("The following is a multiple choice question about elementary mathematics.\n\n"
                                   "Question: 2+2?\nA. 3\nB. 4\nAnswer:")
    assert turns(out[0])[1] == ("assistant", "B. 4")


GSM8K_0_QUESTION = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                    "How many clips did Natalia sell altogether in April and May?")


def test_gsm8k_worked_answers(gsm8k):
    out, _ = apply(gsm8k, task="math", phrasings=["step_by_step"])
    assert turns(out[0]) == [
        ("user", "Solve this math word problem step by step.\n\n" + GSM8K_0_QUESTION),
        ("assistant", ("Natalia sold 48/2 = 24 clips in May.\n"
                      "Natalia sold 48+24 = 72 clips altogether in April and May.\n"
                      "The answer is 72.")),
    ]
    out, _ = apply(gsm8k, task="math", phrasings=["gsm8k"], variables={"calculator_annotations": "keep"})
    assert turns(out[0]) == [("user", GSM8K_0_QUESTION), ("assistant", gsm8k[0]["messages"][1]["content"])]
    # every phrasing's answer ends in the final number
    out, notes = apply(gsm8k, task="math")
    for r in out.to_list():
        final, pid = meta(r)["final_answer"], meta(r)["task_template"]
        answer = r["messages"][-1]["content"]
        assert answer.rstrip(".").endswith(" " + final) and "<<" not in answer
        assert answer.count("####") == (1 if pid == "gsm8k" else 0)
    assert sum(notes["phrasings"].values()) == 20


def test_every_shipped_phrasing_renders():
    samples = {
        "multiple_choice": row(question="Q?", choices=["x", "y", "z"], answer_letter="C", answer_text="z"),
        "math": row(question="1+1?", answer="1+1 = <<1+1=2>>2\n#### 2", final_answer="2"),
        "qa": row(question="Where?", answer="Paris", context="It is in Paris."),
        "summarise": row(user="A long text.", assistant="Short."),
        "classify": row(text="I loved it", label=1),
    }
    variables = {"classify": {"options": ["negative", "positive"]}}
    answers = {"multiple_choice": "C", "math": "2", "qa": "Paris", "summarise": "Short.", "classify": "positive"}
    for task, sample in samples.items():
        for pid in step(task=task).library.phrasings:
            out, _ = apply(Dataset.from_list([sample]), task=task, phrasings=[pid], variables=variables.get(task, {}))
            msgs = turns(out[0])
            assert [r for r, _ in msgs][-2:] == ["user", "assistant"] and all(t.strip() == t and t for _, t in msgs)
            assert answers[task] in msgs[-1][1], (task, pid, msgs)


def test_qa_generative_and_extractive():
    ds = Dataset.from_list([
        row(question="Who wrote Hamlet?", answer="Shakespeare"),
        row(question="Where is the tower?", answer="Paris", context="The tower stands in Paris."),
    ])
    out, _ = apply(ds, task="qa", phrasings=["read_and_answer"])
    assert turns(out[0]) == [("user", "Answer the following question.\n\nQuestion: Who wrote Hamlet?"),
                             ("assistant", "Shakespeare")]
    assert turns(out[1]) == [("user", ("Read the passage below and answer the question using the passage.\n\n"
                                      "Passage:\nThe tower stands in Paris.\n\nQuestion: Where is the tower?")),
                             ("assistant", "Paris")]


def test_summarise_falls_back_to_prompt_and_response():
    ds = Dataset.from_list([row(user="Cats sleep a lot.", assistant="Cats sleep."),
                            row(document="The document.", summary="Doc.")])
    out, _ = apply(ds, task="summarise", phrasings=["tldr"])
    assert turns(out[0]) == [("user", "Cats sleep a lot.\n\nTL;DR:"), ("assistant", "Cats sleep.")]
    assert turns(out[1]) == [("user", "The document.\n\nTL;DR:"), ("assistant", "Doc.")]


def test_classify_labels_by_name_or_index_and_row_options_win():
    ds = Dataset.from_list([row(text="great", label=1), row(text="meh", label="neutral", options=["neutral", "other"])])
    out, _ = apply(ds, task="classify", phrasings=["classify_into"], variables={"options": ["negative", "positive"]})
    assert turns(out[0]) == [("user", ("Classify the text into one of these categories: negative, positive.\n\n"
                                      "Text: great\nCategory:")), ("assistant", "positive")]
    assert turns(out[1])[0][1].startswith("Classify the text into one of these categories: neutral, other.")


# -- assignment by seed ------------------------------------------------------------------------------


def test_assignment_is_deterministic_by_seed_and_independent_of_row_order(arc):
    first, notes = apply(arc, seed=7, task="multiple_choice")
    again, _ = apply(arc, seed=7, task="multiple_choice")
    assert first.to_list() == again.to_list()
    reversed_rows = arc.select(range(len(arc) - 1, -1, -1))
    shuffled, _ = apply(reversed_rows, seed=7, task="multiple_choice")
    assert assignment(shuffled) == assignment(first)
    assert {r["id"]: r["messages"] for r in shuffled.to_list()} == {r["id"]: r["messages"] for r in first.to_list()}
    other, _ = apply(arc, seed=8, task="multiple_choice")
    assert assignment(other) != assignment(first)
    counts = {}
    for pid in assignment(first).values():
        counts[pid] = counts.get(pid, 0) + 1
    assert notes["phrasings"] == {pid: counts.get(pid, 0) for pid in step(task="multiple_choice").library.phrasings}


def test_seed_param_overrides_the_step_seed(arc):
    pinned_a = TaskTemplates(TaskTemplates.Params(task="multiple_choice", seed=5), context("task", seed=1))
    pinned_b = TaskTemplates(TaskTemplates.Params(task="multiple_choice", seed=5), context("task", seed=2))
    assert assignment(apply_step(pinned_a, arc)) == assignment(apply_step(pinned_b, arc))


def test_every_phrasing_is_used_over_enough_rows(shared_data):
    ds = Dataset.from_list(rows_of("gsm8k", shared_data / "gsm8k_train.jsonl", limit=200))
    _, notes = apply(ds, task="math")
    assert len(notes["phrasings"]) == 5 and min(notes["phrasings"].values()) >= 20
    ds = Dataset.from_list(rows_of("arc", shared_data / "arc_easy_train.json", limit=200))
    _, notes = apply(ds, task="multiple_choice", phrasings=["exam_style", "choose_from"])
    assert set(notes["phrasings"]) == {"exam_style", "choose_from"} and min(notes["phrasings"].values()) >= 60


# -- few-shot ----------------------------------------------------------------------------------------


def test_few_shot_inline(arc):
    out, notes = apply(arc, task="multiple_choice", phrasings=["exam_style"], shots=2, variables={"answer_style": "letter"})
    by_id = {r["id"]: r for r in arc.to_list()}
    assert notes["shots"] == 2 and notes["shots_as"] == "inline"
    for r in out.to_list():
        m = meta(r)
        assert len(m["task_shots"]) == 2 and r["id"] not in m["task_shots"] and len(set(m["task_shots"])) == 2
        assert all(s in by_id for s in m["task_shots"])  # examples come from the same source
        msgs = turns(r)
        assert [role for role, _ in msgs] == ["user", "assistant"]
        blocks = msgs[0][1].split("\n\n")
        assert len(blocks) == 3 and all(b.startswith("Question: ") for b in blocks)
        for block, shot_id in zip(blocks, m["task_shots"]):
            shot = meta(by_id[shot_id])
            assert block.startswith(f"Question: {shot['question']}\n") and block.endswith(f"\nAnswer: {shot['answer_letter']}")
        assert blocks[2].endswith("\nAnswer:") and blocks[2].startswith(f"Question: {m['question']}\n")
    # a phrasing whose prompt has no answer cue shows each example's answer after "Answer: "
    out_q, _ = apply(arc, task="multiple_choice", phrasings=["question_options"], shots=1)
    shot = meta(by_id[meta(out_q[0])["task_shots"][0]])
    example, rest = turns(out_q[0])[0][1].split("\n\nAnswer with the letter and the text of the correct option.\n", 1)
    assert example.startswith(shot["question"] + "\n\nA. ")
    assert rest == f"Answer: {shot['answer_letter']}. {shot['answer_text']}\n\n" + ARC_0_USER + (
        "Answer with the letter and the text of the correct option.")
    # seeded: the same seed draws the same examples, another seed others; row order does not matter
    again, _ = apply(arc.select(range(19, -1, -1)), task="multiple_choice", phrasings=["exam_style"], shots=2)
    shots = {r["id"]: meta(r)["task_shots"] for r in out.to_list()}
    assert {r["id"]: meta(r)["task_shots"] for r in again.to_list()} == shots
    other, _ = apply(arc, seed=1, task="multiple_choice", phrasings=["exam_style"], shots=2)
    assert {r["id"]: meta(r)["task_shots"] for r in other.to_list()} != shots


def test_few_shot_turns_come_from_the_same_source(arc, shared_data):
    mmlu = rows_of("mmlu", shared_data / "mmlu" / "val" / "astronomy_val.csv", csv_columns=MMLU_COLUMNS)
    ds = Dataset.from_list(arc.to_list() + mmlu)
    sources = dict(zip(ds["id"], ds["source"]))
    out, _ = apply(ds, task="multiple_choice", phrasings=["tutor_system"], shots=3, shots_as="turns")
    for r in out.to_list():
        m = meta(r)
        roles = [role for role, _ in turns(r)]
        assert roles == ["system"] + ["user", "assistant"] * 4
        assert r["id"] not in m["task_shots"] and {sources[s] for s in m["task_shots"]} == {r["source"]}
        # each example turn is the example row under the same phrasing
        first_shot = meta(next(x for x in ds.to_list() if x["id"] == m["task_shots"][0]))
        assert turns(r)[1][1].startswith(first_shot["question"]) and turns(r)[2][1].startswith(first_shot["answer_letter"] + ". ")


def test_few_shot_never_uses_a_copy_of_the_row():
    twin = row(question="Q1", choices=["a", "b"], answer_letter="A", answer_text="a")
    other = row(question="Q2", choices=["a", "b"], answer_letter="B", answer_text="b")
    out, _ = apply(Dataset.from_list([twin, dict(twin), other]), task="multiple_choice", shots=1)
    assert [meta(r)["task_shots"] for r in out.to_list()] == [[other["id"]], [other["id"]], [twin["id"]]]
    with pytest.raises(CurateError, match=r"shots: 2 needs at least 3 distinct rows of source 's'; it has 2") as e:
        apply(Dataset.from_list([twin, other]), task="multiple_choice", shots=2)
    assert e.value.where == "steps[0].task.shots"


def test_a_phrasing_can_lay_out_its_shots(tmp_path):
    lib = write_library(tmp_path / "lib.yaml", """\
        - id: listed
          user: |
            {% for s in shots %}Example: {{ s.question }} -> {{ s.answer }}
            {% endfor %}Now: {{ question }}
          assistant: "{{ answer }}"
        """)
    ds = Dataset.from_list([row(question=f"q{i}", answer=f"a{i}") for i in range(4)])
    out, _ = apply(ds, library=str(lib), shots=2, shots_as="turns")
    for r in out.to_list():
        m = meta(r)
        examples = [meta(x) for x in ds.to_list() if x["id"] in m["task_shots"]]
        by_id = {x["id"]: meta(x) for x in ds.to_list()}
        expected = "".join(f"Example: {by_id[s]['question']} -> {by_id[s]['answer']}\n" for s in m["task_shots"])
        assert turns(r) == [("user", expected + f"Now: {m['question']}"), ("assistant", m["answer"])]
        assert len(examples) == 2


# -- only some sources -------------------------------------------------------------------------------


def test_sources_filter_leaves_other_rows_untouched(arc):
    general = pairs_dataset([("Say hi.", "Hi!"), ("Name a colour.", "Blue.")], source="general")
    ds = Dataset.from_list(general.to_list() + arc.to_list())
    out, notes = apply(ds, task="multiple_choice", sources=["arc"], shots=1)
    assert out.to_list()[:2] == general.to_list()
    assert all("task_template" in meta(r) for r in out.to_list()[2:])
    assert notes["rows_templated"] == 20 and notes["rows_untouched"] == 2
    with pytest.raises(CurateError, match=r"no rows of source 'ark' at this step \(did you mean 'arc'\?\)"):
        apply(ds, task="multiple_choice", sources=["ark"])


# -- bad input ---------------------------------------------------------------------------------------


def test_a_missing_field_names_the_template_the_field_and_the_row(arc, tmp_path):
    lib = write_library(tmp_path / "lib.yaml", """\
        - id: with_passage
          user: "{{ passage }}\\n\\n{{ question }}"
          assistant: "{{ answer_letter }}"
        """)
    with pytest.raises(CurateError) as e:
        apply(arc, library=str(lib))
    msg = str(e.value)
    assert f"template {lib} phrasing 'with_passage' (user) uses the field 'passage'" in msg
    assert f"row {arc[0]['id']!r} (source 'arc', " in msg and "arc_easy_train.json record 1) lacks" in msg
    assert e.value.where == "steps[0].task"
    # a shipped library on rows of the wrong kind: math on ARC rows lacks `answer`
    with pytest.raises(CurateError, match=r"template tasks/math.yaml phrasing '\w+' \(assistant\) uses the field "
                                          r"'answer', which row '[0-9a-f]+' \(source 'arc'"):
        apply(arc, task="math")
    # a typo in a template gets a did-you-mean from the row's fields
    lib = write_library(tmp_path / "typo.yaml", """\
        - id: typo
          user: "{{ questoin }}"
          assistant: "{{ answer_letter }}"
        """)
    with pytest.raises(CurateError, match=r"uses the field 'questoin', which .* lacks \(did you mean 'question'\?\)"):
        apply(arc, library=str(lib))


def test_unknown_task_phrasing_or_variable_gets_did_you_mean(tmp_path):
    with pytest.raises(ValidationError, match=r"unknown task 'multiple_choise' \(did you mean 'multiple_choice'\?\)"):
        TaskTemplates.Params(task="multiple_choise")
    with pytest.raises(ValidationError, match=r"has no phrasing 'exam_styl' \(did you mean 'exam_style'\?\)"):
        TaskTemplates.Params(task="multiple_choice", phrasings=["exam_styl"])
    with pytest.raises(ValidationError, match=r"no variable 'answer_styl' \(did you mean 'answer_style'\?\)"):
        TaskTemplates.Params(task="multiple_choice", variables={"answer_styl": "letter"})
    with pytest.raises(ValidationError, match=r"variable 'answer_style' must be one of \['letter', 'letter_text'\]"):
        TaskTemplates.Params(task="multiple_choice", variables={"answer_style": "text"})
    with pytest.raises(ValidationError, match="exactly one of `task`"):
        TaskTemplates.Params()
    with pytest.raises(ValidationError, match="exactly one of `task`"):
        TaskTemplates.Params(task="qa", library="x.yaml")
    lib = write_library(tmp_path / "lib.yaml", """\
        - id: short_answer
          user: "{{ question }}"
          assistant: "{{ answer }}"
        """)
    with pytest.raises(CurateError, match=r"has no phrasing 'short_anwser' \(did you mean 'short_answer'\?\)") as e:
        step(library=str(lib), phrasings=["short_anwser"])
    assert e.value.where == "steps[0].task.phrasings"


def test_the_sandbox_blocks_unsafe_access(tmp_path):
    ds = Dataset.from_list([row(question="q", answer="a")])
    for i, expr in enumerate(["question.__class__.__mro__", "''.__class__.__base__.__subclasses__()",
                              "question.format.__globals__"]):
        lib = write_library(tmp_path / f"evil{i}.yaml", f"""\
            - id: evil
              user: "{{{{ {expr} }}}}"
              assistant: "{{{{ answer }}}}"
            """)
        with pytest.raises(CurateError, match=r"phrasing 'evil' \(user\) tried something the sandbox forbids"):
            apply(ds, library=str(lib))
    # no clock in reach: renderings depend only on the row
    lib = write_library(tmp_path / "clock.yaml", """\
        - id: clock
          user: "{{ strftime_now('%Y') }} {{ question }}"
          assistant: "{{ answer }}"
        """)
    with pytest.raises(CurateError, match="uses the field 'strftime_now'"):
        apply(ds, library=str(lib))


def test_broken_library_files_name_the_file_and_phrasing(tmp_path):
    bad = write_library(tmp_path / "syntax.yaml", """\
        - id: broken
          user: "{{ question }"
          assistant: "{{ answer }}"
        """)
    with pytest.raises(CurateError, match=r"syntax.yaml: phrasing 'broken' user does not parse \(line 1\)"):
        step(library=str(bad))
    dup = write_library(tmp_path / "dup.yaml", """\
        - {id: a, user: x, assistant: y}
        - {id: a, user: x, assistant: z}
        """)
    with pytest.raises(CurateError, match="phrasing id 'a' is used twice"):
        step(library=str(dup))
    (tmp_path / "notyaml.yaml").write_text("task: [unclosed\n")
    with pytest.raises(CurateError, match="notyaml.yaml: is not valid UTF-8 YAML"):
        step(library=str(tmp_path / "notyaml.yaml"))
    extra = write_library(tmp_path / "extra.yaml", "- {id: a, user: x, assistant: y, bogus: 1}\n")
    with pytest.raises(CurateError, match="bogus"):
        step(library=str(extra))
    with pytest.raises(CurateError, match="no task library file") as e:
        step(library="missing.yaml", recipe_dir=str(tmp_path))
    assert e.value.where == "steps[0].task.library"
    empty = write_library(tmp_path / "empty.yaml", """\
        - id: blank
          user: "{% if false %}x{% endif %}"
          assistant: "{{ answer }}"
        """)
    with pytest.raises(CurateError, match=r"phrasing 'blank' \(user\) failed on row .*rendered to empty text"):
        apply(Dataset.from_list([row(answer="a")]), library=str(empty))


# -- user libraries ----------------------------------------------------------------------------------


def test_a_user_library_relative_to_the_recipe_dir(tmp_path):
    write_library(tmp_path / "recipes" / "tasks" / "trivia.yaml", """\
        - id: ask
          system: "{% if hard is defined and hard %}Think carefully.{% endif %}"
          user: "Trivia: {{ question }}"
          assistant: "{{ answer | upper }} ({{ tone }})"
        """, extra="""\
        fields: [question, answer]
        variables:
          tone: {default: calm, choices: [calm, loud]}
        """)
    ds = Dataset.from_list([row(question="Capital of France?", answer="Paris"),
                            row(question="Hardest?", answer="This", hard=True)])
    out, notes = apply(ds, recipe_dir=str(tmp_path / "recipes"), library="tasks/trivia.yaml", variables={"tone": "loud"})
    assert turns(out[0]) == [("user", "Trivia: Capital of France?"), ("assistant", "PARIS (loud)")]
    assert turns(out[1]) == [("system", "Think carefully."), ("user", "Trivia: Hardest?"), ("assistant", "THIS (loud)")]
    assert notes["library"] == "tasks/trivia.yaml" and notes["task"] == "mine" and len(notes["library_sha256"]) == 64
    # what a cache key needs beyond the params: the library's contents
    params = TaskTemplates.Params(library="tasks/trivia.yaml")
    token = TaskTemplates.cache_token(params, str(tmp_path / "recipes"))
    assert token == notes["library_sha256"]
    (tmp_path / "recipes" / "tasks" / "trivia.yaml").write_text("task: changed\n", encoding="utf-8")
    assert TaskTemplates.cache_token(params, str(tmp_path / "recipes")) != token


def test_a_recipe_runs_the_step_end_to_end(tmp_path, monkeypatch, shared_data):
    (tmp_path / "lib").mkdir()
    write_library(tmp_path / "lib" / "mine.yaml", """\
        - id: only
          user: "Q: {{ question }}"
          assistant: "{{ answer_letter }}"
        """)
    (tmp_path / "general.jsonl").write_text(json.dumps({"instruction": "Say hi.", "output": "Hi there!"}) + "\n")
    (tmp_path / "r.yaml").write_text(textwrap.dedent(f"""
        name: t
        seed: 1
        sources:
          arc: {{path: {shared_data / 'arc_easy_train.json'}, limit: 10}}
          general: {{path: general.jsonl}}
        steps:
          - task: {{library: lib/mine.yaml, sources: [arc], shots: 1}}
        outputs: {{dir: out}}
        cache: {{dir: cache}}
        template: null
        """))
    monkeypatch.chdir(tmp_path)
    from curate.io import read_jsonl
    from curate.pipeline import run_recipe
    from curate.recipe import load_recipe

    result = run_recipe(load_recipe("r.yaml"), recipe_dir=".")
    rows = list(read_jsonl(tmp_path / "out" / "data.jsonl"))
    arc_rows = [r for r in rows if r["source"] == "arc"]
    assert len(arc_rows) == 10 and all(r["meta"]["task_template"] == "only" for r in arc_rows)
    assert all(r["messages"][0]["content"].startswith("Q: ") and "\n\nQ: " in r["messages"][0]["content"] for r in arc_rows)
    general = next(r for r in rows if r["source"] == "general")
    assert general["messages"] == [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi there!"}]
    notes = result.steps[0].notes
    assert notes["phrasings"] == {"only": 10} and notes["rows_untouched"] == 1 and notes["library"] == "lib/mine.yaml"
