"""Helpers shared by the command modules: clean exits and consistent messages."""
from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable, TypeVar

import click

from hvdrun_cli.errors import HvdjobError, UserInputError

F = TypeVar("F", bound=Callable[..., Any])


def clean_errors(func: F) -> F:
    """Turn domain errors into their exit codes and one line per problem, never a traceback.

    Bad input (UserInputError) exits 2, a failed launch or job exits with its own code. Unexpected
    exceptions keep their traceback: those are bugs to report.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserInputError as exc:
            for problem in exc.problems:
                click.echo(f"hvdjob: error: {problem}", err=True)
            sys.exit(exc.exit_code)
        except HvdjobError as exc:
            click.echo(f"hvdjob: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))
