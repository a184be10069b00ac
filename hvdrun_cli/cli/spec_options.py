"""The flags every spec-reading command shares (``--set``, ``--np``, ``--launcher``, ``--hostfile``, ``-H`` ...).

``spec_options`` adds them to a click command and hands the command one :class:`SpecFlags`;
``overrides_from_flags`` turns their values into :class:`Override` objects for ``load_spec``.
Values are kept as typed, so a bad one (``--np abc``) is reported by the spec validator with the
flag's name, exactly like the same mistake in the file. horovodrun's and torchrun's spellings
(``-np``, ``--nproc-per-node``, ``--network-interfaces``, ``--start-timeout``) are accepted too.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any, Callable, List, Optional, Sequence, Tuple, TypeVar

import click
from click.shell_completion import CompletionItem

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.spec import schema
from hvdrun_cli.spec.overrides import Override, parse_set_option

F = TypeVar("F", bound=Callable[..., Any])

GLOO_TIMEOUT_ENV = "HOROVOD_GLOO_TIMEOUT_SECONDS"

# SpecFlags field -> (the flag as messages and forwarded command lines spell it, the spec key it sets)
FLAG_KEYS = {
    "np": ("--np", "resources.np"),
    "launcher": ("--launcher", "launcher"),
    "hostfile": ("--hostfile", "resources.hostfile"),
    "hosts": ("-H", "resources.hosts"),
    "network_interfaces": ("--network-interfaces", "horovod.network_interfaces"),
    "start_timeout": ("--start-timeout", f"env.{GLOO_TIMEOUT_ENV}"),
}


@dataclass(frozen=True)
class SpecFlags:
    """The shared flags as given on the command line (None: not given)."""

    set_options: Tuple[str, ...] = ()
    np: Optional[str] = None
    launcher: Optional[str] = None
    hostfile: Optional[str] = None
    hosts: Optional[str] = None
    network_interfaces: Optional[str] = None
    start_timeout: Optional[str] = None

    def given(self) -> List[Tuple[str, str]]:
        """``(flag, value)`` for each named flag given, in the order they apply."""
        return [(FLAG_KEYS[name][0], value) for name in FLAG_KEYS
                if (value := getattr(self, name)) is not None]

    def overrides(self) -> List[Override]:
        return overrides_from_flags(self.set_options, **{name: getattr(self, name) for name in FLAG_KEYS})

    def argv(self) -> List[str]:
        """The flags again as a command line, e.g. for the ``hvdjob run`` inside an sbatch script."""
        argv: List[str] = []
        for text in self.set_options:
            argv += ["--set", text]
        for flag, value in self.given():
            argv += [flag, value]
        return argv


def overrides_from_flags(set_options: Sequence[str] = (), **named: Optional[str]) -> List[Override]:
    """Overrides in the order they apply: every ``--set`` first, then the named flags (which win).

    ``named`` takes :class:`SpecFlags` field names (``np="2"``). Raises :class:`UserInputError`
    naming ``--set`` for each option without ``KEY=VALUE``.
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
    for name, (flag, key) in FLAG_KEYS.items():
        value = named.pop(name, None)
        if value is not None:
            overrides.append(Override(key, str(value), flag))
    if named:
        raise TypeError(f"unknown spec flags: {', '.join(sorted(named))}")
    return overrides


def spec_keys(incomplete: str) -> List[str]:
    """Spec keys a ``--set`` value may start with: ``train.`` for a section, ``train.lr=`` for a key."""
    section, _, _ = incomplete.rpartition(".")
    if section not in schema.SECTIONS:
        return []
    out = []
    for name, field in schema.section_fields(section).items():
        dotted = f"{section}.{name}" if section else name
        out.append(f"{dotted}." if field.kind == "section" else f"{dotted}=")
    return sorted(candidate for candidate in out if candidate.startswith(incomplete))


def complete_set_option(ctx: click.Context, param: click.Parameter, incomplete: str) -> List[CompletionItem]:
    """Shell completion for ``--set``: the spec's keys, section by section."""
    return [CompletionItem(key) for key in spec_keys(incomplete)]


def set_option(help_text: str = "Override a spec value, e.g. --set train.lr=0.05 (repeatable; value read as YAML).") -> Callable[[F], F]:
    """The ``--set KEY=VALUE`` option, with spec keys completed by the shell."""
    return click.option("--set", "set_options", multiple=True, metavar="KEY=VALUE", help=help_text,
                        shell_complete=complete_set_option)


def spec_options(func: F) -> F:
    """Add the shared spec flags to a click command; it receives them as ``spec_flags: SpecFlags``."""
    names = [f.name for f in fields(SpecFlags) if f.name != "set_options"]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in names}
        values = {name: None if v is None else str(v) for name, v in values.items() if name != "set_options"}
        values["set_options"] = tuple(kwargs.pop("set_options"))
        return func(*args, spec_flags=SpecFlags(**values), **kwargs)

    options = [
        set_option(),
        click.option("--np", "-np", "--nproc-per-node", "np", metavar="N",
                     help="Number of ranks (resources.np); -np (horovodrun) and --nproc-per-node (torchrun, one "
                          "machine) mean the same."),
        click.option("--launcher", "launcher", metavar="NAME",
                     shell_complete=lambda ctx, param, incomplete: [
                         CompletionItem(name) for name in schema.CHOICES["launcher"] if name.startswith(incomplete)],
                     help="auto, gloo, mpi or srun (launcher)."),
        click.option("--hostfile", "hostfile", metavar="FILE", type=click.Path(),
                     help="Hostfile to run on (resources.hostfile); replaces the spec's hosts."),
        click.option("-H", "--hosts", "hosts", metavar="HOST:N,...",
                     help="Hosts to run on, e.g. a:2,b:2 (resources.hosts); replaces the spec's hostfile."),
        click.option("--network-interfaces", "network_interfaces", metavar="IF[,IF...]",
                     help="Network interfaces for Horovod's traffic, e.g. eth0 (horovod.network_interfaces)."),
        click.option("--start-timeout", "start_timeout", type=click.IntRange(min=1), metavar="SECONDS",
                     help=f"How long ranks wait for each other at start-up before failing (Gloo; sets "
                          f"env.{GLOO_TIMEOUT_ENV}, Horovod's default is 30)."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]
