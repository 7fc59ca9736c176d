"""The ClientApp each SuperNode runs: trains on its own partition only.

The SuperNode's node config says which share it holds (``partition-id``,
``num-partitions``) and its device name (``name``), so results name devices, not ids.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from . import data as data_mod
from .model import build
from .settings import Settings
from .train import evaluate as eval_model
from .train import fit

app = ClientApp()
torch.set_num_threads(1)  # devices share cores with the wrapper and other clients


def _identity(context: Context) -> tuple[str, int, int]:
    nc = context.node_config
    try:
        pid, n = int(nc["partition-id"]), int(nc["num-partitions"])
    except KeyError as exc:
        raise KeyError(f"SuperNode node config lacks {exc}; start it with "
                       "--node-config 'partition-id=I num-partitions=N name=\"dev\"'") from None
    return str(nc.get("name", f"client{pid}")), pid, n


@lru_cache(maxsize=2)
def _data(spec: str, seed: int, pid: int, n: int, alpha: float | None) -> tuple:
    return data_mod.client_data(spec, seed, pid, n, alpha)


def _setup(msg: Message, context: Context) -> tuple[Settings, torch.nn.Module, tuple]:
    s = Settings.from_config(context.run_config)
    _, pid, n = _identity(context)
    model = build(s.model, s.seed)
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    return s, model, _data(s.data, s.seed, pid, n, s.alpha)


@app.query()
def query(msg: Message, context: Context) -> Message:
    """Tell the server who this node is, before any training (so a crash is named)."""
    name, pid, n = _identity(context)
    info = ConfigRecord({"name": name, "partition-id": pid, "num-partitions": n})
    return Message(RecordDict({"info": info}), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    s, model, (train_set, _) = _setup(msg, context)
    rnd = int(msg.content["config"]["server-round"])
    res = fit(model, train_set, s.local_epochs, s.lr, s.batch_size, seed=s.seed + rnd)
    metrics = MetricRecord({"train_loss": res["loss"], "train_accuracy": res["accuracy"],
                            "train_time_s": res["train_time_s"],
                            "num-examples": len(train_set)})
    return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}),
                   reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    _, model, (_, val_set) = _setup(msg, context)
    res = eval_model(model, val_set)
    metrics = MetricRecord({"eval_loss": res["loss"], "eval_accuracy": res["accuracy"],
                            "num-examples": len(val_set)})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)
