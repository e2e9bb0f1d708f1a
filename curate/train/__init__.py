"""Fine-tuning on curated data: `curate train`, `curate compare`, `curate ablate --train`.

- spec.py: the recipe sections `train:` (TrainSpec), `compare:` (CompareSpec) and `evals:` (EvalSpec, from
  curate.evals.spec);
- data.py: rows -> tokens with labels on the assistant spans only; padding and packing collators;
- schedules.py: cosine, 1cycle, cyclic (per epoch), constant;
- trainer.py: `train(data, spec, out_dir)` with transformers' Trainer and a peft LoRA adapter; loss.csv,
  loss.png, train.json;
- staircase.py: the memorisation detector over the loss log;
- compare.py: subset vs random vs full over seeds; ablation grids and their Pareto front;
- run.py / cli.py: the commands.

Nothing here is imported by `import curate`; torch, transformers and peft load when training starts.
"""

# what the `train` extra installs and the commands import (import name -> pip name)
EXTRA_PACKAGES = {"torch": "torch", "peft": "peft", "accelerate": "accelerate", "matplotlib": "matplotlib",
                  "scipy": "scipy"}


def require_train_extra() -> None:
    """Fail with one clear message, before any work, when the `train` extra is not installed."""
    import importlib.util

    from curate.errors import CurateError

    missing = [pip for module, pip in EXTRA_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise CurateError(f"fine-tuning needs the train extra (missing: {', '.join(missing)}): on a CPU machine "
                          "pip install torch==2.13.0 && pip install 'curate[train]'")
