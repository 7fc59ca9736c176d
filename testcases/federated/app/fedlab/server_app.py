"""The ServerApp: FedAvg rounds with per-round, per-client measurements.

The round loop is ours (not ``Strategy.start``) because Flower's own loop waits forever
for missing nodes and reports neither per-client times nor payload sizes; aggregation
is Flower's ``FedAvg.aggregate_train``. Results go to stdout as COLLAB_RESULT lines.
"""

from __future__ import annotations

import time

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from .data import load
from .model import build
from .policy import Outcome, TooFewClients, check_quorum, collect
from .settings import Settings, emit
from .train import evaluate, payload_bytes

app = ServerApp()

#: Seconds between reply polls. Flower's ``Grid.send_and_receive`` sleeps 3 s between
#: polls, which adds up to 3 s to every phase once the clients answer in well under a second.
REPLY_POLL_S = 0.2


def _exchange(grid: Grid, msgs: list[Message], timeout: float) -> list[Message]:
    """``Grid.send_and_receive`` with a short poll: push, then pull replies until all are
    in or ``timeout`` passes (missing replies are the policy's business)."""
    pending = set(grid.push_messages(msgs))
    replies: list[Message] = []
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        got = list(grid.pull_messages(pending))
        replies += got
        pending -= {m.metadata.reply_to_message_id for m in got}
        if pending:
            time.sleep(REPLY_POLL_S)
    return replies


def _send(grid: Grid, nodes: list[int], kind: str, content: RecordDict,
          timeout: float) -> tuple[Outcome, int]:
    msgs = [Message(content=content, dst_node_id=n, message_type=kind) for n in nodes]
    return collect(nodes, _exchange(grid, msgs, timeout)), payload_bytes(content)


def _join(grid: Grid, s: Settings) -> dict[int, str]:
    """Wait for the SuperNodes, then ask each its device name (so a crash can be named)."""
    deadline = time.monotonic() + s.join_timeout_s
    while len(nodes := list(grid.get_node_ids())) < s.num_partitions:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    out, _ = _send(grid, nodes, MessageType.QUERY, RecordDict({"q": ConfigRecord({})}),
                   s.round_timeout_s)
    names = {n: str(m.content["info"]["name"]) for n, m in out.ok.items()}  # type: ignore[attr-defined]
    emit("join", clients=sorted(names.values()), expected=s.num_partitions,
         missing=s.num_partitions - len(names))
    check_quorum("fit", 0, out, names, s.min_fit_clients)
    return names


def _global(model: torch.nn.Module, arrays: ArrayRecord, held_out: object) -> dict[str, float]:
    model.load_state_dict(arrays.to_torch_state_dict())
    return evaluate(model, held_out)  # type: ignore[arg-type]


def _round(grid: Grid, s: Settings, rnd: int, arrays: ArrayRecord, alive: list[int],
           names: dict[int, str], strategy: FedAvg) -> tuple[ArrayRecord, dict[int, dict]]:
    """One FedAvg round; returns new global arrays and a row per client (also failed ones)."""
    rows: dict[int, dict] = {n: {"client": names[n], "status": "ok", "failure": None,
                                 "bytes_sent": 0, "bytes_received": 0} for n in alive}
    fit_in = RecordDict({"arrays": arrays, "config": ConfigRecord({"server-round": rnd})})
    fit, sent = _send(grid, alive, MessageType.TRAIN, fit_in, s.round_timeout_s)
    for n in alive:
        rows[n]["bytes_sent"] += sent
    for n, msg in fit.ok.items():
        m = msg.content["metrics"]  # type: ignore[attr-defined]
        rows[n].update(train_loss=m["train_loss"], train_accuracy=m["train_accuracy"],
                       train_time_s=m["train_time_s"], num_examples=int(m["num-examples"]),
                       bytes_received=payload_bytes(msg.content))  # type: ignore[attr-defined]
    _fail(rows, fit, "fit")
    try:
        check_quorum("fit", rnd, fit, names, s.min_fit_clients)
    except TooFewClients:
        _emit_clients(rnd, rows)
        raise
    new_arrays, _ = strategy.aggregate_train(rnd, list(fit.ok.values()))  # type: ignore[arg-type]
    arrays = new_arrays if new_arrays is not None else arrays
    ev_nodes = list(fit.ok)
    ev, sent = _send(grid, ev_nodes, MessageType.EVALUATE,
                     RecordDict({"arrays": arrays, "config": ConfigRecord({"server-round": rnd})}),
                     s.round_timeout_s)
    for n in ev_nodes:
        rows[n]["bytes_sent"] += sent
    for n, msg in ev.ok.items():
        m = msg.content["metrics"]  # type: ignore[attr-defined]
        rows[n].update(eval_loss=m["eval_loss"], eval_accuracy=m["eval_accuracy"])
        rows[n]["bytes_received"] += payload_bytes(msg.content)  # type: ignore[attr-defined]
    _fail(rows, ev, "evaluate")
    try:
        check_quorum("evaluate", rnd, ev, names, s.min_evaluate_clients)
    finally:
        _emit_clients(rnd, rows)
    return arrays, rows


def _fail(rows: dict[int, dict], out: Outcome, phase: str) -> None:
    for n, why in out.failed.items():
        rows[n].update(status="failed", failure=f"{phase}: {why}")


def _emit_clients(rnd: int, rows: dict[int, dict]) -> None:
    for row in rows.values():
        emit("client", round=rnd, **row)


@app.main()
def main(grid: Grid, context: Context) -> None:
    s = Settings.from_config(context.run_config)
    torch.set_num_threads(1)
    t_run = time.perf_counter()
    _, held_out = load(s.data, s.seed)
    model = build(s.model, s.seed)
    arrays = ArrayRecord(model.state_dict())
    strategy = FedAvg(min_train_nodes=s.min_fit_clients, min_evaluate_nodes=s.min_evaluate_clients,
                      min_available_nodes=s.min_fit_clients)
    g = _global(model, arrays, held_out)
    emit("round", round=0, global_loss=g["loss"], global_accuracy=g["accuracy"],
         round_time_s=0.0, clients_ok=0, clients_failed=0, status="ok")
    names: dict[int, str] = {}
    try:
        names = _join(grid, s)
        alive = sorted(names)
        for rnd in range(1, s.rounds + 1):
            t0 = time.perf_counter()
            try:
                arrays, rows = _round(grid, s, rnd, arrays, alive, names, strategy)
            except TooFewClients:
                emit("round", round=rnd, global_loss=None, global_accuracy=None,
                     round_time_s=time.perf_counter() - t0, status="failed")
                raise
            g = _global(model, arrays, held_out)
            failed = [n for n, r in rows.items() if r["status"] == "failed"]
            alive = [n for n in alive if n not in failed]
            emit("round", round=rnd, global_loss=g["loss"], global_accuracy=g["accuracy"],
                 round_time_s=time.perf_counter() - t0, clients_ok=len(rows) - len(failed),
                 clients_failed=len(failed), status="ok")
    except TooFewClients as exc:
        emit("run", status="failed", error=str(exc), client_names=sorted(names.values()),
             run_time_s=time.perf_counter() - t_run)
        raise
    emit("run", status="completed", error=None, client_names=sorted(names.values()),
         final_accuracy=g["accuracy"], final_loss=g["loss"], run_time_s=time.perf_counter() - t_run)
