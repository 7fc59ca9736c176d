"""Datasets for the federated test case, loaded without any download.

``digits`` is scikit-learn's bundled 8x8 handwritten digits. ``cifar10:/path`` reads the
python pickles of CIFAR-10 (``data_batch_1..5``, ``test_batch``) from a local folder.
The server's held-out set is a seeded stratified cut made before partitioning, so clients
never see it.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .partition import partition

HELD_OUT_FRACTION = 0.2
LOCAL_VAL_FRACTION = 0.2


@dataclass(frozen=True)
class Split:
    """Images as float32 NCHW in [0, 1] (per-channel normalised later by the model) and labels."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> Split:
        return Split(self.x[idx], self.y[idx])


def load(spec: str, seed: int) -> tuple[Split, Split]:
    """Return (train pool shared out to clients, server held-out set) for ``spec``."""
    if spec == "digits":
        x, y = _read_digits()
        test = _stratified_pick(y, HELD_OUT_FRACTION, seed)
        train = np.setdiff1d(np.arange(len(y)), test)
        return Split(x[train], y[train]), Split(x[test], y[test])
    if spec.startswith("cifar10:"):
        return _load_cifar10(Path(spec.split(":", 1)[1]))
    raise ValueError(f"unknown data spec {spec!r}: use 'digits' or 'cifar10:/path/to/cifar-10-batches-py'")


def client_data(spec: str, seed: int, partition_id: int, num_partitions: int,
                alpha: float | None) -> tuple[Split, Split]:
    """This client's (train, local validation) split of its own partition only."""
    if not 0 <= partition_id < num_partitions:
        raise ValueError(f"partition-id {partition_id} outside 0..{num_partitions - 1}; "
                         "fix the SuperNode's --node-config")
    pool, _ = load(spec, seed)
    mine = pool.take(partition(pool.y, num_partitions, alpha, seed)[partition_id])
    order = np.random.default_rng(seed + 1000 + partition_id).permutation(len(mine))
    n_val = max(1, int(len(mine) * LOCAL_VAL_FRACTION))
    return mine.take(order[n_val:]), mine.take(order[:n_val])


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits file, read without importing scikit-learn: the import
    costs seconds, and Flower starts a fresh ClientApp process for every message."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the digits data ship with scikit-learn; install it in the "
                                  "device's Python environment (pip install scikit-learn)")
    path = Path(list(spec.submodule_search_locations)[0], "datasets", "data", "digits.csv.gz")
    raw = np.loadtxt(gzip.open(path, "rt"), delimiter=",", dtype=np.float32)
    x = (raw[:, :64] / 16.0).reshape(-1, 1, 8, 8)
    return np.ascontiguousarray(x), raw[:, 64].astype(np.int64)


def _stratified_pick(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Seeded indices holding ``fraction`` of every class (the server's held-out set)."""
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(y == c))[: max(1, round(fraction * (y == c).sum()))]
             for c in np.unique(y)]
    return np.sort(np.concatenate(picks))


def _load_cifar10(root: Path) -> tuple[Split, Split]:
    names = [f"data_batch_{i}" for i in range(1, 6)]
    missing = [n for n in names + ["test_batch"] if not (root / n).is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 folder {root} lacks {', '.join(missing)}; pass the "
                                "extracted 'cifar-10-batches-py' folder (no download is made)")

    def read(name: str) -> Split:
        with open(root / name, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        x = np.asarray(batch[b"data"], dtype=np.float32).reshape(-1, 3, 32, 32) / 255.0
        return Split(x, np.asarray(batch[b"labels"], dtype=np.int64))

    parts = [read(n) for n in names]
    train = Split(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]))
    return train, read("test_batch")
