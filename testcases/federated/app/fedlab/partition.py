"""Split sample indices across federated clients: IID or label-skewed (Dirichlet).

Pure functions of (labels, number of clients, alpha, seed) so every SuperNode computes
the same split on its own device and takes only its share: no data moves over the LAN.
"""

from __future__ import annotations

import numpy as np

#: A Dirichlet draw is retried until every client holds at least this many samples,
#: so no client trains on an empty partition (small alphas starve some clients).
MIN_PER_CLIENT = 10
_MAX_DRAWS = 1000


def iid_partition(n_samples: int, n_clients: int, seed: int) -> list[np.ndarray]:
    """Shuffle, then cut into ``n_clients`` near-equal disjoint parts."""
    _check(n_samples, n_clients)
    order = np.random.default_rng(seed).permutation(n_samples)
    return [np.sort(p) for p in np.array_split(order, n_clients)]


def dirichlet_partition(labels: np.ndarray, n_clients: int, alpha: float, seed: int,
                        min_per_client: int = MIN_PER_CLIENT) -> list[np.ndarray]:
    """Per class, share its samples among clients with proportions ~ Dir(alpha).

    Small alpha concentrates each class on few clients (strong label skew); large alpha
    approaches IID. Draws repeat (same seed stream) until every client has
    ``min_per_client`` samples.
    """
    labels = np.asarray(labels)
    _check(len(labels), n_clients)
    if alpha <= 0:
        raise ValueError(f"dirichlet alpha must be > 0, got {alpha}; use iid_partition for IID")
    if n_clients * min_per_client > len(labels):
        raise ValueError(f"{len(labels)} samples cannot give {n_clients} clients "
                         f"{min_per_client} samples each; lower the client count")
    rng = np.random.default_rng(seed)
    for _ in range(_MAX_DRAWS):
        parts: list[list[int]] = [[] for _ in range(n_clients)]
        for cls in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == cls))
            shares = rng.dirichlet(np.full(n_clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
            for client, chunk in enumerate(np.split(idx, cuts)):
                parts[client].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_per_client:
            return [np.sort(np.array(p, dtype=np.int64)) for p in parts]
    raise ValueError(f"no Dirichlet(alpha={alpha}) draw gave each of {n_clients} clients "
                     f"{min_per_client} samples in {_MAX_DRAWS} tries; raise alpha")


def partition(labels: np.ndarray, n_clients: int, alpha: float | None,
              seed: int) -> list[np.ndarray]:
    """IID when ``alpha`` is None, else Dirichlet(alpha)."""
    if alpha is None:
        return iid_partition(len(labels), n_clients, seed)
    return dirichlet_partition(labels, n_clients, alpha, seed)


def label_skew(labels: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean total-variation distance between each client's label mix and the global one.

    0 means every client sees the global class mix; 1 means disjoint label sets.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    glob = np.array([(labels == c).mean() for c in classes])
    dists = []
    for p in parts:
        local = labels[p]
        mix = np.array([(local == c).mean() for c in classes])
        dists.append(0.5 * np.abs(mix - glob).sum())
    return float(np.mean(dists))


def _check(n_samples: int, n_clients: int) -> None:
    if n_clients < 1:
        raise ValueError(f"need at least one client, got {n_clients}")
    if n_samples < n_clients:
        raise ValueError(f"{n_samples} samples cannot be split across {n_clients} clients")
