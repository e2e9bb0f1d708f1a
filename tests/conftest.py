import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def lima_style_overrides(data: Path) -> list[str]:
    """The --set values that point recipes/lima_style.yaml at the local copies (as the README shows)."""
    evals = ["lima", "vicuna", "koala", "wizardlm", "sinstruct"]
    return [
        f"sources.alpaca_gpt4.path={data / 'alpaca_gpt4_en_demo_999.json'}",
        f"sources.cherry_alpaca.path={data / 'cherry_alpaca_5_percent.json'}",
        f"sources.code_alpaca.path={data / 'code_alpaca_2k.json'}",
        f"sources.lima.path={data / 'lima_train.json'}",
        f"sources.self_instruct_seeds.path={data / 'self_instruct_seed_tasks.jsonl'}",
    ] + [f"steps.10.decontaminate.eval_sets.{i}.path={data / 'eval_prompts' / f'{name}_test_set.jsonl'}"
         for i, name in enumerate(evals)]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout: skipped when absent, but never under CI=true."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the real data is missing at {SHARED_DATA}")
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _quiet_datasets(monkeypatch, tmp_path):
    # Keep datasets' cache of csv/parquet builds inside the test's temp folder.
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
