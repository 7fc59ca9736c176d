"""Per-device steps run side by side: connect, sync, image check, start.

Each step waits on a network or a device (an SSH handshake, a tar stream, an engine), so
run one after the other 8 devices cost 8 times the slowest; run together they cost
little more than the slowest. Errors stay per device: every device's step runs to its
end (none is left half done), then the first failure in device order is raised and
every failure is handed to ``on_error`` (e.g. to quarantine that device).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: more would only queue on the controller's own two or four cores and sockets
MAX_WORKERS = 16


def each(items: Sequence[T], step: Callable[[T], R], *, name: str = "collab-device",
         on_error: Callable[[T, BaseException], None] | None = None) -> list[R]:
    """``[step(item) for item in items]``, concurrently; results in ``items`` order."""
    items = list(items)
    if len(items) <= 1:
        results: list[R] = []
        for item in items:
            try:
                results.append(step(item))
            except Exception as exc:
                if on_error is not None:
                    on_error(item, exc)
                raise
        return results
    with ThreadPoolExecutor(max_workers=min(len(items), MAX_WORKERS), thread_name_prefix=name) as pool:
        futures = [pool.submit(step, item) for item in items]
        outcomes = [(item, f.exception()) for item, f in zip(items, futures)]
    failed = [(item, error) for item, error in outcomes if error is not None]
    if on_error is not None:
        for item, error in failed:
            on_error(item, error)
    if failed:
        raise failed[0][1]
    return [f.result() for f in futures]
