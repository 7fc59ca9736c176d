"""Every pytest-collab option, defined once for the plugin and the ``collab`` command.

Precedence: command line > ``PYTEST_COLLAB_*`` environment variable > ini key > default.
A bad value raises :class:`OptionError` naming where it came from, so a user knows
whether to fix the command line, the environment or ``pytest.ini``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from pytest_collab.errors import OptionError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected one of {sorted(_TRUE | _FALSE - {''})}")


def parse_positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("expected a number greater than 0")
    return value


@dataclass(frozen=True)
class Option:
    """One setting: its flag, ini key, env var, default and help."""

    name: str
    flag: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    is_flag: bool = False

    @property
    def ini(self) -> str:
        return "collab_" + self.name

    @property
    def env(self) -> str:
        return "PYTEST_COLLAB_" + self.name.upper()

    @property
    def full_help(self) -> str:
        return f"{self.help} (env {self.env}, ini {self.ini}; default: {self.default})"

    def convert(self, raw: Any, source: str) -> Any:
        """Parse ``raw`` (a string from env/ini, or a parsed CLI value); errors name ``source``."""
        try:
            value = raw if not isinstance(raw, str) else self.parse(raw)
        except ValueError as exc:
            raise OptionError(f"{source}: invalid value {raw!r} for {self.flag}: {exc}") from None
        if self.choices and value not in self.choices:
            raise OptionError(
                f"{source}: invalid value {raw!r} for {self.flag}; choose one of {', '.join(self.choices)}"
            )
        return value


OPTIONS: tuple[Option, ...] = (
    Option("lan", "--lan", "local", "LAN profile: a name in network_profiles/ or a path to a YAML file",
           metavar="NAME|PATH"),
    Option("out", "--collab-out", "reports", "folder that receives one run folder per pytest run",
           metavar="DIR"),
    Option("report", "--collab-report", "none", "write report.html into the run folder",
           choices=("html", "none")),
    Option("hz", "--collab-hz", 10.0, "metrics sampling rate of the wrapper, in Hz",
           parse=parse_positive_float, metavar="HZ"),
    Option("ready_timeout", "--collab-ready-timeout", 120.0,
           "seconds a device program may take to become ready", parse=parse_positive_float,
           metavar="SECONDS"),
    Option("strict_devices", "--collab-strict-devices", False,
           "a devices() constraint the profile can never meet is an error instead of a skip",
           parse=parse_bool, is_flag=True),
    Option("lease_timeout", "--collab-lease-timeout", 600.0,
           "seconds a test waits for devices that other runs or workers hold",
           parse=parse_positive_float, metavar="SECONDS"),
    Option("link_timeout", "--collab-link-timeout", 15.0,
           "seconds without an answer from an SSH device before its link is declared dead (the "
           "running program fails naming the device; the device ends the program itself)",
           parse=parse_positive_float, metavar="SECONDS"),
    Option("lab_up", "--collab-lab-up", False,
           "an emulated profile whose lab is not up is brought up (with progress) instead of "
           "every test erroring with `collab lab up NAME`", parse=parse_bool, is_flag=True),
    Option("leases", "--collab-leases", "files",
           "where device leases live: 'files' (lock files, the runs of one controller machine) or "
           "etcd://HOST:PORT[/PREFIX] (several controllers share the lab)", metavar="files|etcd://HOST:PORT"),
    Option("runtime", "--collab-runtime", "profile",
           "how device programs run: as each device's profile says, plain processes, or containers",
           choices=("profile", "process", "docker")),
    Option("registry", "--collab-registry", None,
           "lab registry (host:port) that container images are pushed to and pulled from",
           metavar="HOST:PORT"),
    Option("replay", "--collab-replay", None,
           "re-run a bundle's test case and compare with the bundle's baseline; regressions fail",
           metavar="BUNDLE"),
)

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


def resolve(cli: Mapping[str, Any], env: Mapping[str, str], ini: Mapping[str, Any]) -> dict[str, Any]:
    """Resolve every option from its sources; ``None``/empty means "not given there"."""
    settings: dict[str, Any] = {}
    for opt in OPTIONS:
        if cli.get(opt.name) is not None:
            settings[opt.name] = opt.convert(cli[opt.name], f"command line {opt.flag}")
        elif env.get(opt.env, "") != "":
            settings[opt.name] = opt.convert(env[opt.env], f"environment variable {opt.env}")
        elif ini.get(opt.name) not in (None, "", []):
            settings[opt.name] = opt.convert(ini[opt.name], f"ini key {opt.ini}")
        else:
            settings[opt.name] = opt.default
    return settings


def resolve_from_pytest(config: Any) -> dict[str, Any]:
    """Resolve against a pytest ``Config``."""
    cli = {o.name: config.getoption(o.name) for o in OPTIONS}
    ini = {o.name: config.getini(o.ini) for o in OPTIONS}
    return resolve(cli, os.environ, ini)


def add_to_pytest(parser: Any) -> None:
    """Register every option as a flag and an ini key in the ``collab`` help group."""
    group = parser.getgroup("collab", "pytest-collab: experiments on a lab of devices")
    for opt in OPTIONS:
        kwargs: dict[str, Any] = {"dest": opt.name, "default": None, "help": opt.full_help}
        if opt.is_flag:
            kwargs["action"] = "store_true"
        else:
            kwargs["metavar"] = opt.metavar
            if opt.choices:
                kwargs["choices"] = opt.choices
        group.addoption(opt.flag, **kwargs)
        parser.addini(opt.ini, help=opt.full_help, default=None)


# ---------------------------------------------------------------- experiment options
def declared_options(parser: Any) -> dict[str, tuple[str, str]]:
    """dest -> (option group, long flag) of every option ``parser`` knows.

    pytest has no public listing of its parser's options; this is the one place that
    reads its groups, so a change in pytest breaks here and nowhere else.
    """
    found: dict[str, tuple[str, str]] = {}
    for group in getattr(parser, "_groups", []):
        for argument in getattr(group, "options", []):
            names = list(argument.names())
            flag = next((n for n in names if n.startswith("--")), names[0] if names else None)
            if flag and argument.dest:
                found[argument.dest] = (str(group.name), flag)
    return found


def experiment_options(config: Any, before_conftests: set[str]) -> dict[str, dict[str, Any]]:
    """The options test cases declared (in conftests), as pytest resolved them, by group.

    ``config.getoption`` already holds what the command line, ``PYTEST_ADDOPTS`` and the
    ini file's ``addopts`` gave, else the default: exactly the values the run used.
    ``before_conftests`` are the dests pytest and installed plugins declared (not ours
    to record). An experiment's group is named after its folder (``link_baseline``).
    """
    ours = {o.name for o in OPTIONS}
    grouped: dict[str, dict[str, Any]] = {}
    for dest, (group, flag) in declared_options(getattr(config, "_parser", None)).items():
        if dest in before_conftests or dest in ours:
            continue
        value = config.getoption(dest, None)
        grouped.setdefault(group, {})[flag] = value if _jsonable(value) else str(value)
    return {g: dict(sorted(flags.items())) for g, flags in sorted(grouped.items())}


def experiment_dests(config: Any, before_conftests: set[str]) -> dict[str, str]:
    """dest -> flag of the experiment options (see :func:`experiment_options`)."""
    ours = {o.name for o in OPTIONS}
    return {dest: flag for dest, (_, flag) in declared_options(getattr(config, "_parser", None)).items()
            if dest not in before_conftests and dest not in ours}


def _jsonable(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, (list, tuple)) and all(_jsonable(v) for v in value)


class UnknownOption(OptionError, KeyError):
    """A name that is neither a collab setting nor an experiment option of this run."""

    def __str__(self) -> str:
        return str(self.args[0])


class RunOptions(Mapping[str, Any]):
    """What a test case reads about its run: every option as resolved, and the lab.

    The one public way (fixture ``collab_options``, or ``collab_options_of(config)`` in
    hooks such as ``pytest_generate_tests``): ``opts["lan"]`` is the resolved collab
    setting (command line > env > ini > default, never the raw flag), ``opts["link_sizes"]``
    an experiment option by its dest, ``opts.lan`` the LAN profile object, ``opts.out_dir``
    the folder of run folders (``--collab-out`` resolved against the rootdir).
    """

    def __init__(self, settings: Mapping[str, Any], experiment: Mapping[str, Mapping[str, Any]],
                 dests: Mapping[str, str], lan: Any, out_dir: Any) -> None:
        self.settings = dict(settings)
        self.experiment = {g: dict(v) for g, v in experiment.items()}
        self._values = dict(self.settings)
        flags = {flag: value for group in self.experiment.values() for flag, value in group.items()}
        for dest, flag in dests.items():
            if flag in flags:
                self._values[dest] = flags[flag]
        self.lan = lan
        self.out_dir = out_dir

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise UnknownOption(f"no option {key!r}: known are {', '.join(sorted(self._values))}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)
