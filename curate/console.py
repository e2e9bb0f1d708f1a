"""The terminal side shared by every command module (curate.cli and the feature command modules it
registers): the two consoles, the --set option, the CurateError-to-message wrapper and progress lines."""

from __future__ import annotations

import functools
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from curate.errors import CurateError

out = Console()
err = Console(stderr=True, soft_wrap=True)  # messages name paths: never broken across lines

SetOption = Annotated[Optional[list[str]], typer.Option("--set", help="Override a recipe value: KEY.PATH=VALUE (repeatable).")]


def user_errors(fn):
    """Turn CurateError into a message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CurateError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", markup=True, highlight=False)  # brackets in e are text
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def print_progress(message) -> None:
    """Progress lines of long commands (train, compare, ablate --train) on stderr; non-text events are ignored."""
    if isinstance(message, str):
        err.print(f"[dim]{escape(message)}[/]", highlight=False)
