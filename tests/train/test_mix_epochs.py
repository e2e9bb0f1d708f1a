"""Fresh rows each epoch (`resample: per_epoch`), held-out rows (`holdout`) and stages (`train.stages`): what the
mix draws, and which rows each training epoch reads (curate.mix, curate.train.epochs), on a tiny random Llama."""

from __future__ import annotations

import json

import pytest

from tests.model_fixtures import lm_dir, model_env, needs  # noqa: E402,F401 - fixtures

needs("torch", "peft")

from curate.errors import CurateError  # noqa: E402
from curate.mix import apply_mix  # noqa: E402
from curate.specs.mix import MixSpec  # noqa: E402
from tests.train.test_train import spec, toy_rows  # noqa: E402


def _ds(prefix, n):
    from datasets import Dataset

    return Dataset.from_list([{"id": f"{prefix}{i}", "source": prefix, "meta": "{}",
                               "messages": [{"role": "user", "content": f"q {i}"}, {"role": "assistant", "content": "a"}]}
                              for i in range(n)])


def _mix(general_rows, epochs=3, holdout=0, short="error", size=10):
    spec_ = MixSpec.model_validate({
        "components": {"general": {"source": "g", "fraction": 0.4, "resample": "per_epoch", "holdout": holdout},
                       "domain": {"source": "d", "fraction": 0.6}},
        "size": {"rows": size}, "epochs": epochs, "short": short})
    return apply_mix(spec_, {"general": _ds("g", general_rows), "domain": _ds("d", 30)}, seed=1)


def test_per_epoch_draws_fresh_general_rows_and_repeats_the_domain():
    mixed, drops, info = _mix(general_rows=20)
    rows = mixed.to_list()
    by_epoch = {e: [r["id"] for r in rows if r["component"] == "general" and r["mix_epoch"] == e] for e in (1, 2, 3)}
    assert [len(v) for v in by_epoch.values()] == [4, 4, 4]  # 40% of 10 rows, each epoch
    assert len(set(sum(by_epoch.values(), []))) == 12  # no general row twice while the pool has 20
    domain = [r for r in rows if r["component"] == "domain"]
    assert len(domain) == 6 and all(r["mix_epoch"] == 0 for r in domain)  # every epoch
    g = info["components"]["general"]
    assert g["resample"] == {"epochs": 3, "rows_per_epoch": 4, "fresh_epochs": 3, "reused_rows": 0}
    assert info["realised"]["shares"] == {"general": 0.4, "domain": 0.6} and info["realised"]["rows_per_epoch"] == 10
    assert len(drops) == (20 - 12) + (30 - 6)  # rows drawn for no epoch
    # the same seed draws the same rows; epoch 1 is what a single draw would take
    assert _mix(general_rows=20)[0].to_list() == rows
    once = MixSpec.model_validate({"components": {"general": {"source": "g", "fraction": 0.4},
                                                  "domain": {"source": "d", "fraction": 0.6}}, "size": {"rows": 10}})
    single = apply_mix(once, {"general": _ds("g", 20), "domain": _ds("d", 30)}, seed=1)[0].to_list()
    assert sorted(r["id"] for r in single if r["component"] == "general") == sorted(by_epoch[1])


def test_per_epoch_with_a_small_pool_reuses_rows_only_after_every_row_is_used():
    mixed, _, info = _mix(general_rows=6)  # 3 epochs x 4 rows from 6: epoch 1 fresh, then the order starts again
    rows = mixed.to_list()
    first_pass = [r["id"] for r in rows if r["component"] == "general" and r["mix_epoch"] in (1, 2)]
    assert len(first_pass) == 8 and len(set(first_pass)) == 6  # every row before any twice
    assert info["components"]["general"]["resample"] == {"epochs": 3, "rows_per_epoch": 4, "fresh_epochs": 1,
                                                         "reused_rows": 6}
    assert info["repeats"] == 6
    with pytest.raises(CurateError, match="needs 4 rows but has 3") as e:  # smaller than one epoch's share
        _mix(general_rows=3)
    assert e.value.where == "mix.components.general"
    assert len([r for r in _mix(general_rows=3, short="upsample")[0].to_list() if r["component"] == "general"]) == 12


def test_holdout_sets_the_same_rows_aside_at_every_share():
    held = []
    for size in (5, 10):
        mixed, drops, info = _mix(general_rows=20, holdout=5, size=size)
        ids = info["components"]["general"]["heldout"]["ids"]
        assert len(ids) == 5 and not set(ids) & set(mixed["id"])
        reasons = {d["row"]["id"]: d["reason"] for d in drops}
        assert all("held out for evaluation (mix.components.general.holdout" in reasons[i] for i in ids)
        held.append(ids)
    assert held[0] == held[1]
    with pytest.raises(CurateError) as e:
        _mix(general_rows=20, holdout=20)
    assert e.value.where == "mix.components.general.holdout"


def test_mix_spec_errors_name_what_is_wrong():
    base = {"components": {"g": {"source": "g", "fraction": 0.5, "resample": "per_epoch"},
                           "d": {"source": "d", "fraction": 0.5}}, "size": {"rows": 4}}
    with pytest.raises(ValueError, match="set `epochs` to the training's epochs"):
        MixSpec.model_validate(base)
    with pytest.raises(ValueError, match="needs a mix size in rows"):
        MixSpec.model_validate({**base, "epochs": 2, "size": {"tokens": 40}})
    # epochs without a resampled component change nothing (a grid may switch resample on and off)
    MixSpec.model_validate({**base, "epochs": 2, "components": {"g": {"source": "g", "fraction": 1.0}}})
    with pytest.raises(ValueError, match="resample"):
        MixSpec.model_validate({**base, "epochs": 2, "components": {"g": {"source": "g", "fraction": 1.0,
                                                                          "resample": "each"}}})


def _tagged_rows():
    """6 domain rows for every epoch, 2 fresh general rows for each of 3 epochs (as a per-epoch mix writes them)."""
    rows = toy_rows(12)
    for i, r in enumerate(rows):
        r["component"] = "domain" if i < 6 else "general"
        r["mix_epoch"] = 0 if i < 6 else 1 + (i - 6) // 2
    return rows


def test_each_epoch_trains_on_its_own_general_rows(lm_dir, tmp_path):
    from curate.train.trainer import train

    rows = _tagged_rows()
    res = train(rows, spec(lm_dir, epochs=3, batch_size=4, reshuffle=False), tmp_path / "run", record_order=True)
    # 8 rows an epoch (6 domain + 2 general) in batches of 4: 2 steps per epoch, as a plain 8-row run
    assert res.summary["steps"] == 6 and res.summary["steps_per_epoch"] == 2
    assert res.summary["epochs_plan"] == {"epochs": 3, "rows_per_epoch": 8, "trimmed_rows": 0, "fresh_rows_per_epoch": 2}
    epochs = [sum(res.order[2 * e: 2 * e + 2], []) for e in range(3)]
    for e, ep in enumerate(epochs, 1):
        assert sorted(ep) == list(range(6)) + [6 + 2 * (e - 1), 7 + 2 * (e - 1)]
    doc = json.loads((tmp_path / "run" / "epochs.json").read_text())
    assert [d["epoch"] for d in doc] == [1, 2, 3] and all(d["rows"] == 8 for d in doc)
    assert [d["ids"] for d in doc] == [[rows[i]["id"] for i in ep] for ep in epochs]
    # reshuffle off: the domain rows come in the same order every epoch
    domain_order = [[i for i in ep if i < 6] for ep in epochs]
    assert domain_order[0] == domain_order[1] == domain_order[2]
    with pytest.raises(CurateError) as e:
        train(rows, spec(lm_dir, epochs=4), tmp_path / "run4")
    assert e.value.where == "train.epochs" and "fresh rows for 3 epochs" in str(e.value)


def test_stages_train_the_general_rows_first_in_as_many_steps(lm_dir, tmp_path):
    from curate.train.trainer import train

    rows = _tagged_rows()
    for r in rows:
        r["mix_epoch"] = 0  # a plain mix: 12 rows every epoch
    mixed = train(rows, spec(lm_dir, epochs=2, batch_size=4), tmp_path / "mixed", record_order=True)
    staged = train(rows, spec(lm_dir, epochs=2, batch_size=4, stages=["general", "domain"]), tmp_path / "staged",
                   record_order=True)
    assert staged.summary["steps"] == mixed.summary["steps"] == 6
    seen = sum(staged.order, [])
    assert [rows[i]["component"] for i in seen] == ["general"] * 12 + ["domain"] * 12  # 2 epochs each, in turn
    assert sorted(seen[:6]) == sorted(seen[6:12]) == list(range(6, 12))
    assert staged.summary["epochs_plan"]["stages"] == ["general", "domain"]
    assert [r["step"] for r in staged.log if r["kind"] == "epoch_end"] == [3, 6]
    with pytest.raises(CurateError, match=r"also has components \['domain'\]") as e:
        train(rows, spec(lm_dir, stages=["general", "other"]), tmp_path / "bad")
    assert e.value.where == "train.stages"
