"""Split library tests: one torch thread (the machine's 2 cores are shared; oneDNN with
2 threads under load is ~10x slower), and models captured once per module."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
