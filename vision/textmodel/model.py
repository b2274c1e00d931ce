"""The line recogniser: a small CNN over a 32 x 256 line picture, CTC over 64 columns (training only)."""
from __future__ import annotations

import torch
from torch import nn

from vision.textmodel.charset import CHARSET


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class LineRecognizer(nn.Module):
    def __init__(self, n_classes: int = len(CHARSET) + 1):
        super().__init__()
        self.features = nn.Sequential(
            *_conv(1, 12), nn.MaxPool2d(2),            # 16 x 128
            *_conv(12, 24), nn.MaxPool2d(2),           # 8 x 64
            *_conv(24, 48), nn.MaxPool2d((2, 1)),      # 4 x 64
            *_conv(48, 64), nn.MaxPool2d((4, 1)),      # 1 x 64
        )
        self.sequence = nn.Sequential(
            nn.Conv1d(64, 96, 3, padding=1, bias=False), nn.BatchNorm1d(96), nn.ReLU(inplace=True),
            nn.Conv1d(96, 96, 5, padding=2, bias=False), nn.BatchNorm1d(96), nn.ReLU(inplace=True),
        )
        self.head = nn.Conv1d(96, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: N x 1 x 32 x 256 in 0..1 -> log-probabilities N x 64 x classes."""
        f = self.features(x).squeeze(2)
        logits = self.head(self.sequence(f))
        return torch.log_softmax(logits.permute(0, 2, 1), dim=2)
