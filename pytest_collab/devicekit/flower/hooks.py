"""Measurements and speed-ups put into every Flower task, without touching the app's code.

Installed by ``superexec`` in each forked task process before Flower's own entry point
runs, so they serve any app:

- ServerApp: the ``Result`` a ``Strategy.start`` fills (Flower's per-round record of the
  aggregated train/evaluate metrics and the server-side evaluation) reports each round
  as it is stored; ``Grid.send_and_receive`` polls for replies every
  :data:`REPLY_POLL_S` instead of Flower's 3 s.
- ClientApp: every message handled is timed and sized (payload bytes both ways, the
  node id, the reply's metrics).

Rows go out as ``COLLAB_RESULT {json}`` lines on the task's original stdout (a duplicate
of fd 1 taken before Flower redirects output to its log stream), which the controller
reads from the executor program. Every row carries ``"flower"``: ``round`` or ``client``.
"""

from __future__ import annotations

import os
import sys
import time
import types
from typing import Any, Callable

from ..emit import result_line

#: Heavy frameworks whose presence in a task process is reported in its client rows.
HEAVY = ("torch", "tensorflow", "jax")
#: Seconds between reply polls of the ServerApp (Flower's ``send_and_receive``: 3 s).
REPLY_POLL_S = 0.2

_out_fd: int | None = None


def emit(row: dict[str, Any]) -> None:
    """One result row on the task's original stdout (never through Flower's log stream)."""
    fd = _out_fd if _out_fd is not None else 1
    os.write(fd, (result_line(row) + "\n").encode())


def scalars(record: Any) -> dict[str, float | int]:
    """The numeric values of a Flower MetricRecord/ConfigRecord (lists and text dropped)."""
    out: dict[str, float | int] = {}
    for key, value in dict(record or {}).items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[str(key)] = value
    return out


def payload_bytes(message: Any) -> int:
    """Bytes a Flower Message carries (arrays, metrics, config records)."""
    try:
        if not message.has_content():
            return 0
        return int(sum(rec.count_bytes() for rec in message.content.values()))
    except Exception:  # noqa: BLE001 -- a size we cannot read is not worth a failed task
        return 0


def install(kind: str, device: str) -> None:
    """Hooks for one task process: ``kind`` is ``serverapp`` or ``clientapp``."""
    global _out_fd
    _out_fd = os.dup(1)
    if kind == "serverapp":
        _install_server()
    else:
        _install_client(device)


# ------------------------------------------------------------------ server side
class _RoundRecords(dict[int, Any]):
    """A ``Result`` field that reports each round's metrics as Flower stores them."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def __setitem__(self, rnd: int, record: Any) -> None:
        super().__setitem__(rnd, record)
        emit({"flower": "round", "round": int(rnd), "source": self.source,
              "metrics": scalars(record), "t": time.time()})


def _install_server() -> None:
    import flwr.serverapp.strategy.strategy as strategy_mod
    import flwr.superlink.grid.http_grid as grid_mod

    base = strategy_mod.Result

    def reporting_result(*args: Any, **kwargs: Any) -> Any:
        result = base(*args, **kwargs)
        result.train_metrics_clientapp = _RoundRecords("train")
        result.evaluate_metrics_clientapp = _RoundRecords("evaluate")
        result.evaluate_metrics_serverapp = _RoundRecords("server")
        return result

    strategy_mod.Result = reporting_result  # type: ignore[assignment,misc]
    grid_mod.time = _capped_time(REPLY_POLL_S)


def _capped_time(cap: float) -> Any:
    """The ``time`` module with ``sleep`` capped at ``cap`` seconds (for one module only)."""
    capped = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time)
                                      if not k.startswith("__")})
    capped.sleep = lambda s: time.sleep(min(s, cap))
    return capped


# ------------------------------------------------------------------ client side
def _round_of(message: Any) -> int | None:
    group = str(getattr(message.metadata, "group_id", "") or "")
    if group.isdigit():
        return int(group)
    try:
        return int(message.content["config"]["server-round"])
    except Exception:  # noqa: BLE001 -- no round in this message
        return None


def _install_client(device: str) -> None:
    from flwr.clientapp.client_app import ClientApp

    original: Callable[..., Any] = ClientApp.__call__

    def measured(self: Any, message: Any, context: Any) -> Any:
        row: dict[str, Any] = {
            "flower": "client", "device": device, "node_id": int(context.node_id),
            "run_id": int(context.run_id), "phase": str(message.metadata.message_type),
            "round": _round_of(message), "bytes_to_client": payload_bytes(message)}
        t0 = time.perf_counter()
        try:
            reply = original(self, message, context)
        except BaseException as exc:
            row.update(time_s=time.perf_counter() - t0, status="failed",
                       error=f"{type(exc).__name__}: {exc}", bytes_from_client=0)
            emit(row)
            raise
        row.update(time_s=time.perf_counter() - t0, status="ok",
                   bytes_from_client=payload_bytes(reply), metrics={},
                   heavy_modules=",".join(m for m in HEAVY if m in sys.modules))
        try:
            if reply.has_content():
                for rec in reply.content.metric_records.values():
                    row["metrics"].update(scalars(rec))
        except Exception:  # noqa: BLE001 -- metrics are a bonus, the timing is the row
            pass
        emit(row)
        return reply

    ClientApp.__call__ = measured  # type: ignore[method-assign]
