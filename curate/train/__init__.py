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
