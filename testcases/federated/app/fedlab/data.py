"""Datasets for the federated test case, loaded without any download.

``digits`` is scikit-learn's bundled 8x8 handwritten digits. ``cifar10:/path`` reads the
python pickles of CIFAR-10 (``data_batch_1..5``, ``test_batch``) from a local folder.
The server's held-out set is a seeded stratified cut made before partitioning, so clients
never see it.
"""

from __future__ import annotations

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
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
        y = d.target.astype(np.int64)
        xtr, xte, ytr, yte = train_test_split(x, y, test_size=HELD_OUT_FRACTION,
                                              random_state=seed, stratify=y)
        return Split(xtr, ytr), Split(xte, yte)
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
