"""How a command group of ``tiaojie`` is made, written once."""

from __future__ import annotations

import typer


def command_group(help: str, *, name: str | None = None) -> typer.Typer:
    """A group of commands: its help in English and Chinese, shown when the group is run
    without a command; no shell-completion options (only the root command would carry
    them, and Tiaojie does not offer them)."""
    return typer.Typer(name=name, help=help, no_args_is_help=True, add_completion=False)
