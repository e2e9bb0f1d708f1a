"""Fine-tuning on curated data: `curate train`, `curate compare`, `curate ablate --train`.

- the recipe sections `train:` (TrainSpec), `compare:` (CompareSpec) and `evals:` (EvalSpec) are validated in
  curate.specs.train and curate.specs.evals; rows -> tokens with labels on the assistant spans only (the
  assistant masks TRL trains with) is curate.encoding, shared with the evaluations;
- data.py: the rows of a run folder, checked, and a validation sample;
- schedules.py: cosine, 1cycle, cyclic (per epoch), constant;
- trainer.py: `train(data, spec, out_dir)`: one training run and its folder (loss.csv, loss.png, train.json);
- sft.py: TRL's SFTTrainer set up for it (curate's subclass, the SFTConfig, the peft LoRA adapter);
- loss_log.py: the loss log from the Trainer's callbacks, loss.csv written and read;
- epochs.py: which rows each epoch reads (a mix's fresh rows per epoch, `stages`);
- staircase.py: the memorisation detector over the loss log;
- context.py: a recipe with its training sections split off (`split_sections`), and its run folder;
- arms.py: the arms of compare (subset, random, random_tokens, random_balanced, full, full_steps);
- stats.py: t-intervals over seeds, the paired per-item bootstrap, the Pareto front;
- compare.py / compare_report.py: compare's runs, and what it writes;
- grid.py: ablation grids trained, and their Pareto front; heldout.py: the rows a mix held out, for the evals;
- mixlaw.py / grid_fit.py / fit_report.py: the mixing law fitted to a trained grid, the recommended ratio, the
  next ratios to train, and the fit in results.md;
- runs.py: one training run and its evaluation;
- run.py / cli.py: the commands.

Nothing here is imported by `import curate`; torch, transformers, trl, peft and lm-eval load when a command
runs.
"""

# what the `train` extra installs and the commands import (import name -> pip name)
EXTRA_PACKAGES = {"torch": "torch", "trl": "trl", "peft": "peft", "accelerate": "accelerate",
                  "lm_eval": "lm-eval", "matplotlib": "matplotlib", "scipy": "scipy"}


def require_train_extra() -> None:
    """Fail with one clear message, before any work, when the `train` extra is not installed."""
    import importlib.util

    from curate.errors import CurateError

    missing = [pip for module, pip in EXTRA_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise CurateError(f"fine-tuning needs the train extra (missing: {', '.join(missing)}): on a CPU machine "
                          "pip install torch==2.13.0 && pip install 'curate[train]'")
