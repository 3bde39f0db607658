"""Backbone building blocks with switchable fake quantisation."""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.modules.quant import QConv2d


class ConvBNAct(nn.Sequential):
    """Quantised conv -> BatchNorm -> optional ReLU6 (padding k//2)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> None:
        layers: list[nn.Module] = [
            QConv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand] -> kxk depthwise -> 1x1 project [+ input]."""

    def __init__(self, cin: int, cout: int, expansion: int, kernel: int, stride: int, residual: bool) -> None:
        super().__init__()
        hidden = cin * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNAct(cin, hidden, 1))
        layers += [ConvBNAct(hidden, hidden, kernel, stride, groups=hidden), ConvBNAct(hidden, cout, 1, act=False)]
        self.body = nn.Sequential(*layers)
        if residual and (stride != 1 or cin != cout):
            raise ValueError(f"a residual block needs stride 1 and cin == cout, got {stride}, {cin}->{cout}")
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out
