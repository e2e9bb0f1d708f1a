"""The docs cannot drift from the code: the step reference is generated from it, and every recipe key of
every section is documented on a line of its own in the page that covers it."""

import re
from pathlib import Path

from curate.docs import steps_page

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def assert_documented(text: str, models, where: str, loose=()):
    """Each field of each model appears as `name:` at the start of a line of `text` (anywhere in the text
    for the models in `loose`, whose keys sit inline in examples)."""
    for model in models:
        for name in model.model_fields:
            found = re.search(rf"^\s*{name}:", text, re.M) or (model in loose and f"{name}:" in text)
            assert found, f"recipe key {model.__name__}.{name} is not documented in {where}"


def test_the_step_reference_matches_the_code():
    assert page("steps.md") == steps_page(), "regenerate it: curate steps --markdown --write docs/steps.md"


def test_the_readme_is_short_names_the_two_commands_and_links_every_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "pip install -e . && curate run recipes/quickstart.yaml" in text
    assert "python -m pytest -q" in text
    for doc in sorted(DOCS.glob("*.md")):
        assert f"(docs/{doc.name})" in text, f"README does not link docs/{doc.name}"
    for link in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)\)", text):
        assert (ROOT / link).is_file(), f"README links {link}, which does not exist"


def test_the_recipe_reference_documents_every_key():
    from curate.recipe import Cache, ExecutorSpec, Outputs, Recipe, Source, StepResources
    from curate.templates.spec import TemplateSpec

    assert_documented(page("recipes.md"), (Recipe, Source, Outputs, Cache, TemplateSpec), "docs/recipes.md")
    assert_documented(page("engine.md") + page("recipes.md"), (ExecutorSpec, StepResources), "docs/engine.md",
                      loose=(StepResources,))


def test_the_fine_tuning_page_documents_every_key_of_its_sections():
    """train:, evals: and compare: (curate.specs.train, curate.specs.evals)."""
    from curate.specs.evals import EvalSource, EvalSpec, EvalTask
    from curate.specs.train import CONDITIONS, CompareSpec, LoraSpec, TrainSpec

    text = page("fine-tuning.md")
    assert_documented(text, (TrainSpec, LoraSpec, EvalSpec, EvalTask, CompareSpec), "docs/fine-tuning.md")
    # an eval's `source:` takes a recipe source's keys, documented with the sources
    assert_documented(page("recipes.md"), (EvalSource,), "docs/recipes.md", loose=(EvalSource,))
    for arm in CONDITIONS:
        assert f"| `{arm}` |" in text, f"compare arm {arm} is not in docs/fine-tuning.md's table"


def test_the_mixing_page_documents_every_key_of_the_mix_and_ablate_sections():
    from curate.specs.ablate import AblateSpec
    from curate.specs.mix import Component, MixSize, MixSpec

    text = page("mixing.md")
    assert_documented(text, (MixSpec, Component, MixSize, AblateSpec), "docs/mixing.md", loose=(MixSize,))
    assert "--suggest N" in text
