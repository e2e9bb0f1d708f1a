"""Imported by the worker fork server only (its preload list): the server dies with the run that started it,
so a run killed by SIGKILL leaves no server behind (and its workers, which die with the server, neither)."""

from curate.engine.executor import die_with_parent

die_with_parent()
