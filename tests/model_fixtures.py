"""Tiny random models built locally for the model-based tests (nothing is downloaded).

`needs(*modules)`: skip a test module without an optional package, but fail under CI=true.
Fixtures for the training tests (import them by name into a test module): `model_env` (autouse: no hub,
a private model cache, one torch thread), `lm_dir` (a tiny causal Llama folder, built once per module),
`tok` (its tokenizer).

`tiny_tokenizer(path)`: a byte-level BPE tokenizer trained here on a few hundred lines, with ChatML
special tokens and chat template. `tiny_llama(path, kind)`: a random LlamaForCausalLM (hidden 32,
2 layers) or LlamaForSequenceClassification with that tokenizer, saved like a hub model.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "the", "dog", "ran", "to", "the", "park", "while", "birds", "sang", "songs", "about", "rain", "sun", "water", "numbers", "one", "two", "three", "four", "five", "rate", "answer", "question", "explain", "why", "how", "what", "list", "give", "write"]


def corpus() -> list[str]:
    lines = []
    for i in range(400):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(12)]
        lines.append(" ".join(words) + f" {i} {i % 5 + 1}. Rating: {i % 5 + 1}!?\n")
    return lines


def tiny_tokenizer(path: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    fast.save_pretrained(path)
    return fast


def tiny_llama(path: Path, kind: str = "causal", max_positions: int = 1024, seed: int = 0, num_labels: int = 1):
    import torch
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        LlamaForSequenceClassification,
    )

    tok = tiny_tokenizer(path)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=max_positions, tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        num_labels=num_labels,
    )
    torch.manual_seed(seed)
    cls = LlamaForCausalLM if kind == "causal" else LlamaForSequenceClassification
    model = cls(config)
    with torch.no_grad():  # larger random weights, so losses differ clearly from row to row
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
    model.save_pretrained(path)
    return path


def needs(*modules: str) -> None:
    """Skip the calling test module when an optional package is missing, except under CI=true, where a missing
    install step must fail instead."""
    for m in modules:
        if os.environ.get("CI") == "true":
            importlib.import_module(m)
        else:
            pytest.importorskip(m)


@pytest.fixture(autouse=True)
def model_env(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("CURATE_MODELS_DIR", str(tmp_path / "models-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "lm")


@pytest.fixture(scope="module")
def tok(lm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(lm_dir)
