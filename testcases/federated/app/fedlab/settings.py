"""The run configuration both apps read (keys of [tool.flwr.app.config], overridable with
``flwr run -c``), parsed once with the errors a user can act on."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Mapping

RESULT_PREFIX = "COLLAB_RESULT "


@dataclass(frozen=True)
class Settings:
    rounds: int
    local_epochs: int
    lr: float
    batch_size: int
    data: str                 # "digits" | "cifar10:/path"
    model: str                # "cnn" | "resnet18"
    alpha: float | None       # None = IID, else Dirichlet(alpha)
    seed: int
    num_partitions: int
    min_fit_clients: int
    min_evaluate_clients: int
    round_timeout_s: float
    join_timeout_s: float

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Settings:
        try:
            alpha = float(cfg["alpha"])
            return cls(
                rounds=int(cfg["num-server-rounds"]), local_epochs=int(cfg["local-epochs"]),
                lr=float(cfg["lr"]), batch_size=int(cfg["batch-size"]), data=str(cfg["data"]),
                model=str(cfg["model"]), alpha=alpha if alpha > 0 else None,
                seed=int(cfg["seed"]), num_partitions=int(cfg["num-partitions"]),
                min_fit_clients=int(cfg["min-fit-clients"]),
                min_evaluate_clients=int(cfg["min-evaluate-clients"]),
                round_timeout_s=float(cfg["round-timeout"]),
                join_timeout_s=float(cfg["join-timeout"]),
            )
        except KeyError as exc:
            raise KeyError(f"run config lacks {exc}; it is declared in "
                           "testcases/federated/app/pyproject.toml [tool.flwr.app.config]") from None


def emit(kind: str, **fields: Any) -> None:
    """Print one result line the framework collects with ``Program.results()``."""
    line = RESULT_PREFIX + json.dumps({"kind": kind, **fields}, separators=(",", ":"))
    print(line, flush=True)
    sys.stdout.flush()
