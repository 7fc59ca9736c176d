"""Models: a small CNN for 8x8 digits, a ResNet-18 (torchvision, random init) for CIFAR-10."""

from __future__ import annotations

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions and two linear layers: ~40k parameters, a few ms per batch on a Pi."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
                                  nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build(name: str, seed: int) -> nn.Module:
    """Model by name, seeded so the server's initial global model is reproducible."""
    torch.manual_seed(seed)
    if name == "cnn":
        return DigitsCNN()
    if name == "resnet18":
        # torchvision only on this path; weights=None so nothing is downloaded.
        from torchvision.models import resnet18

        return resnet18(weights=None, num_classes=10)
    raise ValueError(f"unknown model {name!r}: use 'cnn' (digits) or 'resnet18' (cifar10)")
