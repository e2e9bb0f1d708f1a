"""Commands of the fine-tuning feature: `curate train`, `curate eval`, `curate compare`.

Registered by `curate.cli` through COMMAND_MODULES ("curate.train.cli"); torch, transformers and peft are
imported only when a command runs.
"""


import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer) -> None:
    from curate.console import SetOption, out, user_errors
    from curate.console import print_progress as progress

    @app.command("train")
    @user_errors
    def train_cmd(
        target: Annotated[Path, typer.Argument(help="A recipe (trains on its run folder, running it if needed) or a run folder.")],
        set_: SetOption = None,
        model: Annotated[Optional[str], typer.Option("--model", help="The model to fine-tune (hub id, folder or .gguf); same as --set train.model=...")] = None,
        data: Annotated[str, typer.Option("--data", help="Which rows of the run folder: data or baseline_random.")] = "data",
        out_dir: Annotated[Optional[Path], typer.Option("--out", help="The training folder (default <run folder>/train).")] = None,
        evaluate: Annotated[bool, typer.Option("--eval/--no-eval", help="Run the evals: suite on the tuned and base model.")] = True,
        rerun: Annotated[bool, typer.Option("--rerun", help="Run the recipe again even if its run folder is up to date.")] = False,
    ):
        """LoRA fine-tune a causal LM on a curated run folder (loss on assistant tokens only); loss curves, staircase check, evals."""
        from curate.train import require_train_extra
        from curate.train.run import train_target

        require_train_extra()
        folder = train_target(target, set_, model=model, dataset=data, out=out_dir, evaluate=evaluate, rerun=rerun,
                              progress=progress)
        summary = json.loads((folder / "train.json").read_text(encoding="utf-8"))
        r, st = summary["results"], summary["staircase"]
        out.print(f"trained {summary['steps']} steps ({summary['epochs']:g} epochs) on {summary['data']['train']['kept']} rows: "
                  f"train loss {r['train_loss_first']} -> {r['train_loss_last']}"
                  + (f", validation loss {r['eval_loss_first']} -> {r['eval_loss_last']}" if r["eval_loss_last"] is not None else "")
                  + f", {r['tokens_per_second']} tokens/s")
        if st["score"] is not None:
            out.print(f"staircase score {st['score']} ({'FLAGGED: the loss drops at epoch boundaries' if st['flagged'] else 'not flagged'})")
        if (folder / "evals.md").exists():
            out.print((folder / "evals.md").read_text(encoding="utf-8"), markup=False)
        out.print(f"wrote {folder}: {', '.join(summary['files'])}" + (", evals.json, evals.md" if (folder / 'evals.json').exists() else ""))

    @app.command("eval")
    @user_errors
    def eval_cmd(
        target: Annotated[str, typer.Argument(help="A training folder (from curate train) or a model: hub id, folder or .gguf file.")],
        recipe: Annotated[Optional[Path], typer.Option("--recipe", help="Take the evals: section from this recipe.")] = None,
        set_: SetOption = None,
        json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the results to this JSON file.")] = None,
    ):
        """Run the evaluation suite (lm-eval tasks, multiple choice, GSM8K, ROUGE/BLEU, loss) on a model; with a training folder, against its base model."""
        from curate.train import require_train_extra

        require_train_extra()
        from curate.evals.suite import markdown_table
        from curate.train.run import eval_target

        result = eval_target(target, recipe=recipe, overrides=set_, progress=progress)
        cols = {}
        if "base" in result:
            cols["base"] = result["base"]["metrics"]
        cols[result["model_loaded"]] = result["metrics"]
        out.print("\n".join(markdown_table(cols, result["info"])), markup=False)
        if "domain_gain" in result:
            out.print(f"domain gain {result['domain_gain']}, general retention {result['general_retention']}")
        if json_out:
            from curate.io import write_json_atomic

            write_json_atomic(json_out, result)
            out.print(f"wrote {json_out}")

    @app.command("compare")
    @user_errors
    def compare_cmd(
        recipe: Annotated[Path, typer.Argument(help="A recipe with a select step (and train:, evals:, compare: sections).")],
        set_: SetOption = None,
        rerun: Annotated[bool, typer.Option("--rerun", help="Run the recipe again even if its run folder is up to date.")] = False,
    ):
        """Train the curated subset and matched baselines (compare.conditions), N seeds each; means with CIs, paired per-item intervals, table, plot."""
        from curate.train import require_train_extra
        from curate.train.compare import compare

        require_train_extra()
        folder = compare(recipe, set_, rerun=rerun, progress=progress)
        out.print((folder / "results.md").read_text(encoding="utf-8"), markup=False)
        out.print(f"wrote {folder}/results.json, results.md, compare.png, loss_curves.png and one folder per run")
