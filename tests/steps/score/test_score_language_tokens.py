import math

import pytest
from pydantic import ValidationError

from curate.errors import CurateError
from curate.steps.score.language import Language
from curate.steps.score.tokens import Tokens
from tests.helpers import build, context, pairs_dataset

EN = "The weather is lovely today, so we are going for a long walk in the park."
DE = "Das Wetter ist heute schön, deshalb gehen wir im Park lange spazieren."
FR = "Il fait très beau aujourd'hui, alors nous allons faire une longue promenade."

# -- score.language --------------------------------------------------------------------------------


def test_language_per_row_with_confidence():
    ds = pairs_dataset([("q", EN), ("q", DE), ("q", ""), ("q", FR)])
    s = build(Language).score(ds)
    assert s["lang"] == ["en", "de", "", "fr"]
    assert s["lang_why"] == [None, None, "empty response", None]
    assert s["lang_confidence_why"] == s["lang_why"]
    for i in (0, 1, 3):
        assert 0.5 < s["lang_confidence"][i] <= 1.0
    assert math.isnan(s["lang_confidence"][2])


def test_language_key_picks_the_text():
    ds = pairs_dataset([(DE, EN)])
    assert build(Language, key="prompt").score(ds)["lang"] == ["de"]
    assert build(Language, key="response").score(ds)["lang"] == ["en"]
    s = build(Language, key="prompt").score(pairs_dataset([("", EN)]))
    assert s["lang"] == [""] and s["lang_why"] == ["empty prompt"]


def test_language_restriction_and_reset():
    ds = pairs_dataset([("q", EN)])
    restricted = build(Language, languages=["de", "nl"]).score(ds)
    assert restricted["lang"][0] in ("de", "nl")
    # the model is shared: a later unrestricted step must see every language again
    assert build(Language).score(ds)["lang"] == ["en"]


def test_language_bad_params():
    with pytest.raises(ValidationError, match="'english'"):
        Language.Params(languages=["en", "english"])
    with pytest.raises(ValidationError):
        Language.Params(key="answer")
    with pytest.raises(ValidationError):
        Language.Params(languages=[])


# -- score.tokens ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """A tiny word-level tokenizer trained here (nothing is downloaded), saved like a hub tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    lines = [f"user assistant hello world number {i} : ! the cat sat on the mat" for i in range(300)]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # words and runs of punctuation
    tok.train_from_iterator(lines, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[BOS]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", bos_token="[BOS]")
    path = tmp_path_factory.mktemp("tok") / "tiny"
    fast.save_pretrained(path)
    return path


def test_token_counts_by_hand(tokenizer_dir):
    ds = pairs_dataset([("Hello world", "Hi there!"), ("", "the cat")])
    s = build(Tokens, tokenizer=str(tokenizer_dir)).score(ds)
    # conversation "user: Hello world\nassistant: Hi there!" -> user : Hello world assistant : Hi there !
    assert s["n_tokens"] == [9, 6]  # "user: \nassistant: the cat" -> user : assistant : the cat
    assert s["prompt_tokens"] == [2, 0]
    assert s["response_tokens"] == [3, 2]  # unknown words still count one token each
    assert all(isinstance(v, int) for col in s.values() for v in col)


def test_token_key(tokenizer_dir):
    ds = pairs_dataset([("Hello world", "Hi there!")])
    s = build(Tokens, tokenizer=str(tokenizer_dir), key="response").score(ds)
    assert s["n_tokens"] == s["response_tokens"] == [3]


def test_tokenizer_path_relative_to_recipe(tokenizer_dir):
    step = Tokens(Tokens.Params(tokenizer="tiny"), context("score.tokens", recipe_dir=str(tokenizer_dir.parent)))
    assert step.score(pairs_dataset([("a b", "c")]))["prompt_tokens"] == [2]


def test_tokenizer_load_failure_names_it(tmp_path):
    missing = str(tmp_path / "no-such-tokenizer")
    step = build(Tokens, tokenizer=missing)
    with pytest.raises(CurateError) as e:
        step.score(pairs_dataset([("a", "b")]))
    assert e.value.where == "steps[0].score.tokens.tokenizer"
    assert missing in str(e.value)


def test_tokens_bad_params():
    with pytest.raises(ValidationError):
        Tokens.Params()  # tokenizer is required
    with pytest.raises(ValidationError):
        Tokens.Params(tokenizer="x", key="answers")


def test_a_restricted_run_does_not_narrow_what_later_recipes_may_name():
    from curate.steps.registry import get_step

    lang = get_step("score.language")
    build(lang, languages=["en", "de"]).score(pairs_dataset([("Hallo", "Guten Tag, wie geht es dir heute?")]))
    assert lang.Params(languages=["pt", "ja"]).languages == ["pt", "ja"]


def test_the_batched_language_id_equals_py3langid_on_real_rows(shared_data):
    """curate.steps.score.langid_batch walks py3langid's automaton for many texts at once: the same labels,
    confidences equal to 1e-4."""
    from curate.specs.source import Source
    from curate.rows import text_of
    from curate.sources.load import load_source
    from curate.steps.score.langid_batch import classify_many
    from curate.steps.score.language import _identifier

    texts = []
    for name in ("alpaca_gpt4_en_demo_999.json", "code_alpaca_2k.json", "lima_train.json"):
        texts += [text_of(r["messages"], "conversation")[:2000] for r in load_source("x", Source(path=str(shared_data / name))).rows]
    texts += ["Bonjour, comment allez-vous aujourd'hui ?", "Das ist ein kurzer deutscher Satz.", "日本語の文です。",
              "ПРИВЕТ МИР", "x", "🙂🙂"]
    identifier = _identifier()
    for languages in (None, ["en", "de", "fr", "es"]):
        identifier.set_languages(languages)
        ours, theirs = classify_many(identifier, texts), [identifier.classify(t) for t in texts]
        assert [label for label, _ in ours] == [label for label, _ in theirs]
        assert max(abs(a - b) for (_, a), (_, b) in zip(ours, theirs)) <= 1e-4  # float32 sums in another order
    identifier.set_languages(None)
