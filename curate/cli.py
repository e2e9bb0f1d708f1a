"""The `curate` command line (typer + rich).

User errors (bad recipe, bad data, impossible budgets) print one clear message and exit with code 2,
without a traceback.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from curate.console import SetOption, err, out, print_progress, user_errors  # noqa: F401 - print_progress: the commands' progress lines
from curate.errors import CurateError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Curate and mix LLM instruction-tuning data.")
class RichReporter:
    def loading(self, source):
        err.print(f"[dim]loading source[/] {source}")

    def step_started(self, index, total, label):
        pass  # a line per finished step is enough: steps of one pass finish together

    def step_finished(self, report):
        cached = " [dim](cached)[/]" if report.cached else ""
        err.print(f"[dim][{report.index + 1}/{report.total}][/] {escape(report.label)}: {report.rows_in} -> "
                  f"{report.rows_out} rows in {report.seconds:.2f}s{cached}")

    def warning(self, message):
        err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


@app.command()
@user_errors
def run(
    recipe: Annotated[Path, typer.Argument(help="The recipe YAML file.")],
    set_: SetOption = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute every step.")] = False,
    workers: Annotated[Optional[str], typer.Option("--workers", help="Processes for row-local steps: a number, or "
                                                   "auto (one per core; the default); 1 runs in-process.")] = None,
    executor: Annotated[Optional[str], typer.Option("--executor", help="Where the steps run: local (this machine; "
                                                    "the default) or ray (a Ray cluster: pip install 'curate[ray]').")] = None,
    address: Annotated[Optional[str], typer.Option("--address", help="With --executor ray: the cluster (auto, "
                                                   "ray://HOST:10001, HOST:6379); default: a Ray instance on this "
                                                   "machine, for this run.")] = None,
):
    """Run a recipe: load, clean, score, filter, dedup, select, template, write outputs."""
    from curate.pipeline import run_recipe
    from curate.recipe import load_recipe

    r = load_recipe(recipe, set_)
    _choose_executor(r, executor, address)
    warn_missing_licenses(r)
    from curate.card.cli import card_warnings_to

    with card_warnings_to(err):  # the card written at the end of the run may warn too
        result = run_recipe(r, reporter=RichReporter(), use_cache=False if no_cache else None,
                            workers=_workers(workers))
    print_funnel(result.manifest)
    out.print(f"wrote {', '.join(result.manifest['outputs']['files'])} and manifest.json to {result.out_dir}")
    if result.carried["kept"]:
        out.print(f"kept {', '.join(result.carried['kept'])} from the previous run in {result.out_dir} (same data, byte for byte)")
    if result.removed_note():
        err.print(f"[yellow]{escape(result.removed_note())}[/]", highlight=False)


def _choose_executor(recipe, kind: str | None, address: str | None) -> None:
    """--executor / --address over the recipe's `executor:` section."""
    if kind is not None:
        if kind not in ("local", "ray"):
            raise CurateError(f"--executor takes local or ray, not {kind!r}")
        recipe.executor.kind = kind
    if address is not None:
        if recipe.executor.kind != "ray":
            raise CurateError("--address names a Ray cluster: add --executor ray")
        recipe.executor.address = address


def _workers(value: str | None):
    if value is None or value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise CurateError(f"--workers takes a number or auto, not {value!r}") from None
    if n < 1:
        raise CurateError("--workers must be at least 1")
    return n


def warn_missing_licenses(recipe) -> None:
    from curate.card.licenses import missing_license_warnings

    for message in missing_license_warnings(recipe.sources):
        err.print(f"[yellow]warning:[/] {message}")


def print_funnel(manifest: dict) -> None:
    from curate.runfolder import funnel_rows

    table = Table(title=f"funnel: {manifest['name']}", title_justify="left")
    for col, kw in (("step", {}), ("in", {"justify": "right"}), ("out", {"justify": "right"}),
                    ("dropped", {"justify": "right"}), ("why (top reasons)", {"overflow": "fold"})):
        table.add_column(col, **kw)
    from curate.inspect import visible

    for step, rin, rout, dropped, reasons in funnel_rows(manifest):
        table.add_row(escape(step), str(rin), str(rout), str(dropped), escape(visible(reasons)))
    out.print(table)
    t = manifest["totals"]
    if t.get("repeats"):
        out.print(f"rows in {t['rows_in']} = out {t['rows_out']} - repeated {t['repeats']} + dropped {t['dropped']}")
    else:
        out.print(f"rows in {t['rows_in']} = out {t['rows_out']} + dropped {t['dropped']}")
    from curate.runfolder import alarms

    for message in alarms(manifest):
        err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)
    if manifest.get("random_baseline"):
        b = manifest["random_baseline"]
        out.print(f"matched random baseline: {b['rows']} rows from the {b['pool_rows']}-row pool of {b['selector']}")


@app.command()
@user_errors
def ablate(
    recipe: Annotated[Path, typer.Argument(help="A recipe with an `ablate:` section.")],
    set_: SetOption = None,
    train: Annotated[bool, typer.Option("--train", help="Then fine-tune every point (train: and evals: sections), "
                                        "draw domain gain against general retention (the Pareto front) and fit the "
                                        "mixing law that recommends a general share.")] = False,
    suggest: Annotated[int | None, typer.Option("--suggest", metavar="N", min=1, help="Propose the next N ratios to train, "
                                                "where the fitted law of the trained grid is least certain (alone: "
                                                "builds and trains nothing).")] = None,
):
    """Build one dataset per point of the recipe's ablation grid (mix ratios, sizes, any values); --train fine-tunes each."""
    from curate.ablate import run_ablation

    if suggest is not None and not train:  # from the trained grid as it is
        from curate.train.grid import suggest_ratios

        _, _, report, proposed = suggest_ratios(str(recipe), set_, suggest)
        out.print("\n".join(report + proposed), markup=False)
        return

    if train:  # check the training sections before building anything
        from curate.train.grid import check_grid_training

        check_grid_training(str(recipe), set_)
    out_dir = run_ablation(str(recipe), set_, reporter=lambda i, n, name: err.print(f"[bold]point {i + 1}/{n}[/] {name}"),
                           notice=lambda message: err.print(f"[yellow]{escape(message)}[/]", highlight=False))
    out.print((out_dir / "index.md").read_text(encoding="utf-8"), markup=False)
    out.print(f"wrote {out_dir}/index.json and one run folder per point")
    if train:
        from curate.train.grid import train_ablation

        folder = train_ablation(str(recipe), set_, ablate_dir=out_dir, progress=print_progress)
        out.print((folder / "results.md").read_text(encoding="utf-8"), markup=False)
        out.print(f"wrote {folder}/pareto.json, fit.json, results.md, pareto.png, fit.png and one training folder per "
                  "point and seed")
        if suggest is not None:
            from curate.train.grid import suggest_ratios

            out.print("\n".join(suggest_ratios(str(recipe), set_, suggest)[3]), markup=False)


@app.command()
@user_errors
def validate(
    recipe: Annotated[Path, typer.Argument(help="The recipe YAML file.")],
    set_: SetOption = None,
):
    """Check a recipe (schema, step names and parameters) without running it."""
    from curate.recipe import load_recipe

    from curate.engine.columns import check_columns
    from curate.runfolder import check_output_dir

    r = load_recipe(recipe, set_)
    check_output_dir(r.output_dir(), r)
    check_columns(r)
    warn_missing_licenses(r)
    out.print(f"[green]ok[/]: {recipe} — {len(r.sources)} sources, {len(r.steps)} steps, outputs to {r.output_dir()}")
    for name, src in r.sources.items():
        where = src.path if src.path else f"hub {src.hub}"
        out.print(f"  source {name}: {where} (format {src.format}, license {src.license or 'unknown'})")
    for label, name, params in r.step_entries():
        out.print(f"  step {label}: {json.dumps(params) if params else '(defaults)'}")


@app.command()
@user_errors
def inspect(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (outputs.dir of a recipe).")],
    dropped: Annotated[bool, typer.Option("--dropped", help="Show dropped rows instead of kept ones.")] = False,
    step: Annotated[Optional[str], typer.Option(help="Only rows dropped by this step (implies --dropped).")] = None,
    reason: Annotated[Optional[str], typer.Option(help="Only dropped rows whose reason contains this text.")] = None,
    source: Annotated[Optional[str], typer.Option(help="Only rows from this source.")] = None,
    row_id: Annotated[Optional[str], typer.Option("--id", help="Only the row with this id.")] = None,
    n: Annotated[int, typer.Option("-n", help="How many rows to show.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print rows as JSON Lines on stdout (the count goes to stderr).")] = False,
    changed: Annotated[bool, typer.Option("--changed", help="Show kept rows a transform (clean, task) changed: "
                                          "each changed turn before and after.")] = False,
):
    """Show kept or dropped rows with their scores and reasons, or what clean changed (--changed)."""
    from curate.inspect import select_changes, select_rows, show_changes, show_rows

    if changed:
        show_changes(out, select_changes(run_dir, step=step, source=source, row_id=row_id), n, as_json, notes=err)
        return
    rows = select_rows(run_dir, dropped=dropped or bool(step) or bool(reason), step=step, reason=reason,
                       source=source, row_id=row_id)
    show_rows(out, rows, n, as_json, notes=err)


@app.command()
def steps(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the step reference as Markdown (docs/steps.md).")] = False,
    write: Annotated[Optional[Path], typer.Option("--write", help="With --markdown: write it to this file instead.")] = None,
):
    """List every step with its role and parameters."""
    from curate.steps.registry import get_step, step_names

    if markdown:
        from curate.docs import steps_page
        from curate.io import write_text_atomic

        if write is None:
            sys.stdout.write(steps_page())
        else:
            write_text_atomic(write, [steps_page().rstrip("\n")])  # it adds the last newline
            err.print(f"wrote {write}")
        return
    from curate.docs import param_defaults

    table = Table(title="steps")
    table.add_column("name")
    table.add_column("also named")
    table.add_column("role")
    table.add_column("parameters (default)", overflow="fold")
    for name in step_names():
        cls = get_step(name)
        table.add_row(name, ", ".join(cls.aliases), cls.role, ", ".join(f"{k}={v}" for k, v in param_defaults(cls).items()))
    out.print(table)


# Commands of later features live beside their code: each module's register(app) adds them.
COMMAND_MODULES: tuple[str, ...] = ("curate.card.cli", "curate.train.cli")
for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main():  # pragma: no cover - the console script calls app()
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
