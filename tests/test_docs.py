"""The README's step reference is generated from the code; this fails when they drift apart."""

import re
from pathlib import Path

from curate.docs import steps_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_step_reference_matches_the_code():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- steps:begin -->\n(.*)<!-- steps:end -->", text, re.S)
    assert block, "README lost its steps:begin/steps:end markers"
    assert block.group(1) == steps_markdown(), "regenerate it: curate steps --markdown"


def test_readme_names_the_two_commands_and_every_recipe_key():
    text = README.read_text(encoding="utf-8")
    assert "pip install -e . && curate run recipes/quickstart.yaml" in text
    assert "python -m pytest -q" in text
    from curate.recipe import Cache, ExecutorSpec, Outputs, Recipe, Source
    from curate.templates.spec import TemplateSpec

    for model in (Recipe, Source, Outputs, Cache, ExecutorSpec, TemplateSpec):
        for name in model.model_fields:
            assert re.search(rf"^\s*{name}:", text, re.M), f"recipe key {model.__name__}.{name} is not documented"


def test_readme_documents_every_key_of_the_training_sections():
    """train:, evals: and compare: (curate.train.spec, curate.evals.spec): every key on a line of its own."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Fine-tuning and comparing", 1)[1].split("\n## ", 1)[0]
    from curate.evals.spec import EvalSource, EvalSpec, EvalTask
    from curate.train.spec import CONDITIONS, CompareSpec, LoraSpec, TrainSpec

    for model in (TrainSpec, LoraSpec, EvalSpec, EvalTask, EvalSource, CompareSpec):
        for name in model.model_fields:
            assert re.search(rf"^\s*{name}:", section, re.M) or (model is EvalSource and f"{name}:" in text), \
                f"recipe key {model.__name__}.{name} is not documented"
    for arm in CONDITIONS:
        assert f"| `{arm}` |" in section, f"compare arm {arm} is not in the README's table"


def test_readme_documents_every_key_of_the_mix_and_ablate_sections():
    """mix: (its components and size) and ablate: (curate.mix, curate.ablate_spec): every key on a line of its own."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Mixing general and domain data", 1)[1].split("\n## ", 1)[0]
    from curate.ablate_spec import AblateSpec
    from curate.mix_spec import Component, MixSize, MixSpec

    for model in (MixSpec, Component, MixSize, AblateSpec):
        for name in model.model_fields:
            assert re.search(rf"^\s*{name}:", section, re.M) or (model is MixSize and f"{name}:" in section), \
                f"recipe key {model.__name__}.{name} is not documented"
    assert "--suggest N" in section
