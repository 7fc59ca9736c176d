"""A Flower app folder as the controller sees it: validated, described, packed for shipping.

Any app in Flower's ``flwr run`` layout works: a folder whose ``pyproject.toml`` has
``[tool.flwr.app]`` (publisher, ``components`` naming the ServerApp and ClientApp) and
optionally ``[tool.flwr.app.config]``. Bad input fails here, on the controller, naming
the file and the key, instead of as Flower's ``[code: 15] Invalid run configuration``
on a device minutes later.
"""
from __future__ import annotations

import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import tomllib

from pytest_collab.errors import CollabError

#: Modules imported by the warm executors for a dependency of the app (distribution
#: name -> modules). Others are imported under their distribution name ('-' -> '_').
WARM_MODULES: dict[str, tuple[str, ...]] = {
    "torch": ("torch", "torch.optim", "torch._dynamo"),
    "scikit-learn": ("sklearn", "sklearn.linear_model"),
    "pillow": ("PIL",),
    "flwr-datasets": ("flwr_datasets",),
}
#: Dependencies never worth a warm-up import (Flower itself is always imported).
NOT_WARMED = {"flwr", "hatchling", "setuptools"}
#: Folders never shipped with the app.
SKIP_DIRS = {"__pycache__", ".git", ".venv", "venv", ".mypy_cache", ".pytest_cache",
             ".ruff_cache", "node_modules"}


class FlowerAppError(CollabError):
    """The app folder is not a Flower app, or a run/node config does not fit it."""


@dataclass(frozen=True)
class FlowerApp:
    path: Path
    name: str
    components: dict[str, str]
    config: dict[str, Any] = field(default_factory=dict)
    dependencies: tuple[str, ...] = ()

    def warm_modules(self) -> tuple[str, ...]:
        """The modules the warm executors import for this app (torch only if it needs it)."""
        mods: list[str] = []
        for dep in self.dependencies:
            name = re.split(r"[\s\[<>=!~;@(]", dep.strip(), maxsplit=1)[0].lower()
            if not name or name in NOT_WARMED:
                continue
            mods += WARM_MODULES.get(name, (name.replace("-", "_"),))
        return tuple(dict.fromkeys(mods))

    def check_run_config(self, run_config: Mapping[str, Any]) -> None:
        """Flower only accepts overrides of keys the app declares: say which ones are not."""
        unknown = sorted(set(run_config) - set(self.config))
        if unknown:
            raise FlowerAppError(
                f"{self.path / 'pyproject.toml'}: run_config key(s) {', '.join(unknown)} are not "
                f"in [tool.flwr.app.config] (it has: {', '.join(sorted(self.config)) or 'none'}); "
                "Flower rejects them with '[code: 15] Invalid run configuration'. Declare them "
                "there or drop them")

    def pack(self) -> Path:
        """A ``.tar.gz`` of the app folder (one file: ``collab.put`` ships it anywhere)."""
        out = Path(tempfile.mkdtemp(prefix="collab-flwr-app-")) / f"{self.path.name}.tar.gz"

        def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            parts = Path(info.name).parts
            if any(p in SKIP_DIRS for p in parts) or info.name.endswith((".pyc", ".fab")):
                return None
            return info

        with tarfile.open(out, "w:gz") as tar:
            tar.add(self.path, arcname=self.path.name, filter=keep)
        return out


def load_app(path: str | Path) -> FlowerApp:
    """Read and check the Flower app folder at ``path``."""
    root = Path(path).expanduser().resolve()
    toml = root / "pyproject.toml"
    if not toml.is_file():
        raise FlowerAppError(f"{root}: no pyproject.toml; a Flower app is a folder in the "
                             "`flwr run` layout (`flwr new` makes one)")
    try:
        data = tomllib.loads(toml.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise FlowerAppError(f"{toml}: not valid TOML ({exc})") from None
    app = data.get("tool", {}).get("flwr", {}).get("app")
    if not isinstance(app, dict):
        raise FlowerAppError(f"{toml}: no [tool.flwr.app] table; add it with publisher, "
                             "[tool.flwr.app.components] serverapp/clientapp")
    components = app.get("components", {})
    missing = [k for k in ("serverapp", "clientapp") if k not in components]
    if missing:
        raise FlowerAppError(f"{toml}: [tool.flwr.app.components] lacks {', '.join(missing)} "
                             "(e.g. serverapp = \"my_app.server_app:app\")")
    project = data.get("project", {})
    return FlowerApp(path=root, name=str(project.get("name", root.name)),
                     components=dict(components), config=dict(app.get("config", {})),
                     dependencies=tuple(project.get("dependencies", ())))


def config_value(value: Any) -> str:
    """A value in Flower's ``key=value`` config syntax (TOML scalars)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise FlowerAppError(f"config value {value!r} ({type(value).__name__}): Flower configs hold "
                         "bool, int, float or str only")


def config_args(config: Mapping[str, Any]) -> list[str]:
    """``key=value`` items, one per key, as ``flwr run -c`` takes them."""
    return [f"{key}={config_value(value)}" for key, value in config.items()]


def node_config_text(config: Mapping[str, Any]) -> str:
    """A SuperNode's ``--node-config`` string."""
    return " ".join(config_args(config))
