"""The flags every spec-reading command shares (``--set``, ``--np``, ``--launcher``, ``--hostfile``, ``-H``).

``spec_options`` adds them to a click command and hands the command one :class:`SpecFlags`;
``overrides_from_flags`` turns their values into :class:`Override` objects for ``load_spec``.
Values are kept as typed, so a bad one (``--np abc``) is reported by the spec validator with the
flag's name, exactly like the same mistake in the file.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, TypeVar

import click

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.spec.overrides import Override, parse_set_option

F = TypeVar("F", bound=Callable[..., Any])

# flag -> the spec key it sets
FLAG_KEYS = (
    ("--np", "resources.np"),
    ("--launcher", "launcher"),
    ("--hostfile", "resources.hostfile"),
    ("-H", "resources.hosts"),
)


@dataclass(frozen=True)
class SpecFlags:
    """The shared flags as given on the command line (None: not given)."""

    set_options: Tuple[str, ...] = ()
    np: Optional[str] = None
    launcher: Optional[str] = None
    hostfile: Optional[str] = None
    hosts: Optional[str] = None

    def overrides(self) -> List[Override]:
        return overrides_from_flags(self.set_options, self.np, self.launcher, self.hostfile, self.hosts)


def overrides_from_flags(
    set_options: Sequence[str] = (),
    np: Optional[str] = None,
    launcher: Optional[str] = None,
    hostfile: Optional[str] = None,
    hosts: Optional[str] = None,
) -> List[Override]:
    """Overrides in the order they apply: every ``--set`` first, then the named flags (which win).

    Raises :class:`UserInputError` naming ``--set`` for each option without ``KEY=VALUE``.
    """
    overrides: List[Override] = []
    problems: List[Problem] = []
    for text in set_options:
        try:
            overrides.append(parse_set_option(text))
        except UserInputError as exc:
            problems += exc.problems
    if problems:
        raise UserInputError(problems)
    for (flag, key), value in zip(FLAG_KEYS, (np, launcher, hostfile, hosts)):
        if value is not None:
            overrides.append(Override(key, value, flag))
    return overrides


def spec_options(func: F) -> F:
    """Add the shared spec flags to a click command; it receives them as ``spec_flags: SpecFlags``."""

    @functools.wraps(func)
    def wrapper(*args: Any, set_options: Tuple[str, ...], np: Optional[str], launcher: Optional[str],
                hostfile: Optional[str], hosts: Optional[str], **kwargs: Any) -> Any:
        flags = SpecFlags(tuple(set_options), np, launcher, hostfile, hosts)
        return func(*args, spec_flags=flags, **kwargs)

    options = [
        click.option("--set", "set_options", multiple=True, metavar="KEY=VALUE",
                     help="Override a spec value, e.g. --set train.lr=0.05 (repeatable; value read as YAML)."),
        click.option("--np", "np", metavar="N", help="Number of ranks (resources.np)."),
        click.option("--launcher", "launcher", metavar="NAME",
                     help="auto, gloo, mpi or srun (launcher)."),
        click.option("--hostfile", "hostfile", metavar="FILE",
                     help="Hostfile to run on (resources.hostfile); replaces the spec's hosts."),
        click.option("-H", "--hosts", "hosts", metavar="HOST:N,...",
                     help="Hosts to run on, e.g. a:2,b:2 (resources.hosts); replaces the spec's hostfile."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]
