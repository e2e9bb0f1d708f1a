"""`curate card`, `curate report` and `curate publish`: added to the `curate` command by register(app)
(the module is listed in curate.cli.COMMAND_MODULES)."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

RunDir = Annotated[Path, typer.Argument(help="A run folder (outputs.dir of a recipe).")]


@contextmanager
def card_warnings_to(console):
    """Print CardWarnings as one line each, each message once (not in Python's warning format); other
    warnings go on as usual. `curate run` can wrap run_recipe in it as well."""
    from curate.card.writer import CardWarning

    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always", CardWarning)
        try:
            yield
        finally:
            caught = list(log)
    seen = set()
    for w in caught:
        if issubclass(w.category, CardWarning):
            if str(w.message) not in seen:
                seen.add(str(w.message))
                console.print(f"[yellow]warning:[/] {w.message}", markup=True, highlight=False)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def register(app: typer.Typer) -> None:
    from curate.console import err, out, user_errors

    @app.command()
    @user_errors
    def card(
        run_dir: RunDir,
        out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder for README.md and its plots "
                                                        "(default: the recipe's card.dir, else data_cards/<name>).")] = None,
        repo: Annotated[Optional[str], typer.Option("--repo", help="The Hub id the set is (or will be) published under.")] = None,
    ):
        """Write the data card (Hugging Face dataset card + datasheet + statistics) of a run."""
        from curate.card.writer import write_card

        with card_warnings_to(err):
            path = write_card(run_dir, out_dir=out_dir, repo_id=repo, report=False)
        pngs = sorted(p.name for p in path.parent.glob("*.png"))
        out.print(f"wrote {path}" + (f" and {', '.join(pngs)}" if pngs else ""))

    @app.command()
    @user_errors
    def report(
        run_dir: RunDir,
        out_file: Annotated[Optional[Path], typer.Option("--out", help="The HTML file (default RUN_DIR/report.html).")] = None,
        max_rows: Annotated[int, typer.Option("--max-rows", min=1, help="Kept rows embedded in the page.")] = 20000,
    ):
        """Write one self-contained HTML report of a run: funnel, drops, scores, kept rows, duplicates."""
        from curate.card.report import write_report

        with card_warnings_to(err):
            path = write_report(run_dir, out_file, max_rows=max_rows)
        out.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, opens offline)")

    @app.command()
    @user_errors
    def publish(
        run_dir: RunDir,
        repo: Annotated[str, typer.Option("--repo", help="The Hub dataset id, owner/name.")],
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Write the folder that would be uploaded; upload nothing.")] = False,
        out_dir: Annotated[Optional[Path], typer.Option("--out", help="With --dry-run: where to write it (default RUN_DIR/publish).")] = None,
        private: Annotated[bool, typer.Option("--private", help="Create the Hub repo as private.")] = False,
        include_rejects: Annotated[bool, typer.Option("--include-rejects", help="Upload rejects.jsonl too.")] = False,
    ):
        """Push the dataset and its card to the Hugging Face Hub (token from `hf auth login` or HF_TOKEN)."""
        from curate.card.publish import publish as do_publish
        from curate.errors import CurateError

        if out_dir is not None and not dry_run:
            raise CurateError("--out only applies with --dry-run", "--out")
        with card_warnings_to(err):
            result = do_publish(run_dir, repo, dry_run=dry_run, out=out_dir, private=private, include_rejects=include_rejects)
        if dry_run:
            out.print(f"dry run: wrote the folder for {repo} to {result['folder']} (nothing uploaded):")
        else:
            out.print(f"published {repo}: {result['url']}")
        for f in result["files"]:
            out.print(f"  {f}")
