"""Backbone building blocks: quantised, elastic, and able to produce their static copy."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from search_spaces.modules.quant import ElasticBatchNorm2d, QConv2d


class ConvBNAct(nn.Module):
    """Quantised conv -> batch-norm -> optional ReLU6 (padding kernel // 2).

    ``kernel_bn``: each smaller kernel size of an elastic conv gets its own batch-norm (``bn_small``),
    as it has its own weights; otherwise all kernel sizes share ``bn``.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, depthwise: bool = False, act: bool = True,
                 bits_choices: Sequence[int] = (8,), act_signed: bool = True,
                 kernels: Sequence[int] | None = None, kernel_bn: bool = False) -> None:
        super().__init__()
        self.conv = QConv2d(cin, cout, kernel, stride, depthwise, bits_choices, act_signed, kernels)
        self.bn = ElasticBatchNorm2d(cout)
        self.bn_small = nn.ModuleDict({str(k): ElasticBatchNorm2d(cout) for k in (kernels or ()) if k != kernel}) \
            if kernel_bn else None
        self.relu = nn.ReLU6(inplace=True) if act else None

    def active_bn(self) -> ElasticBatchNorm2d:
        """The batch-norm of the active kernel size."""
        key = str(self.conv.active_kernel)
        return self.bn_small[key] if self.bn_small is not None and key in self.bn_small else self.bn

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """A checkpoint with one shared batch-norm gives it to every kernel size (same network as before)."""
        if self.bn_small is not None:
            for k in self.bn_small:
                for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                    if prefix + f"bn.{name}" in state_dict:
                        state_dict.setdefault(f"{prefix}bn_small.{k}.{name}", state_dict[prefix + f"bn.{name}"].clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.active_bn()(self.conv(x))
        return self.relu(x) if self.relu is not None else x

    def static_copy(self, in_channels: int) -> ConvBNAct:
        dst = ConvBNAct.__new__(ConvBNAct)
        nn.Module.__init__(dst)
        dst.conv = self.conv.static_copy(in_channels)
        dst.bn = self.active_bn().static_copy(dst.conv.out_channels)
        dst.bn_small = None
        dst.relu = nn.ReLU6(inplace=True) if self.relu is not None else None
        return dst


class InvertedResidual(nn.Module):
    """MobileNetV2 block, elastic: [1x1 expand] -> kxk depthwise -> 1x1 project [+ input].

    The supernet block holds the largest expansion and kernel, and its own depthwise weights for each
    smaller kernel size. :meth:`configure` picks the active expansion ratio, depthwise kernel and
    whether a skippable (residual) block is skipped. ``expansions == (1,)`` means no expand layer (the
    first MobileNetV2 block).
    """

    chained = (("expand", "dw"), ("dw", "project"))  # (a, b): a's output feeds b only (search_spaces.modules.folded)

    def __init__(self, cin: int, cout: int, expansions: Sequence[int], kernels: Sequence[int], stride: int,
                 residual: bool, bits_choices: Sequence[int] = (8,), kernel_bn: bool = False) -> None:
        super().__init__()
        if residual and (stride != 1 or cin != cout):
            raise ValueError(f"a residual block needs stride 1 and cin == cout, got {stride}, {cin}->{cout}")
        if 1 in expansions and len(set(expansions)) > 1:
            raise ValueError("expansion 1 (no expand layer) cannot be mixed with other expansion ratios")
        self.cin, self.cout, self.residual = cin, cout, residual
        self.expansions, self.kernels = tuple(expansions), tuple(kernels)
        hidden = cin * max(expansions)
        self.expand = ConvBNAct(cin, hidden, 1, bits_choices=bits_choices, act_signed=True) \
            if max(expansions) > 1 else None
        self.dw = ConvBNAct(hidden, hidden, max(kernels), stride, depthwise=True, bits_choices=bits_choices,
                            act_signed=False, kernels=kernels, kernel_bn=kernel_bn)
        self.project = ConvBNAct(hidden, cout, 1, act=False, bits_choices=bits_choices, act_signed=False)
        self.configure(max(expansions), max(kernels), False)

    def configure(self, expansion: int, kernel: int, skip: bool) -> None:
        """Active expansion ratio, depthwise kernel size and skip flag (skip needs a residual block)."""
        if expansion not in self.expansions or kernel not in self.kernels:
            raise ValueError(f"block choices: expansion {expansion} of {self.expansions}, kernel {kernel} of "
                             f"{self.kernels}")
        if skip and not self.residual:
            raise ValueError("only a residual block can be skipped")
        self.expansion, self.kernel, self.skip = expansion, kernel, skip
        if self.expand is not None:
            self.expand.conv.active_out = self.cin * expansion
        self.dw.conv.active_kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.skip:
            return x
        h = self.expand(x) if self.expand is not None else x
        h = self.project(self.dw(h))
        return x + h if self.residual else h

    def quant_layers(self) -> list[QConv2d]:
        """Quantised layers in genotype order: expand (if any), depthwise, project."""
        return [m.conv for m in (self.expand, self.dw, self.project) if m is not None]

    def static_copy(self) -> nn.Module:
        """The active block as a standalone block (an identity when skipped)."""
        if self.skip:
            return nn.Identity()
        hidden = self.cin * self.expansion
        dst = InvertedResidual.__new__(InvertedResidual)
        nn.Module.__init__(dst)
        dst.cin, dst.cout, dst.residual = self.cin, self.cout, self.residual
        dst.expansions, dst.kernels = (self.expansion,), (self.kernel,)
        dst.expand = self.expand.static_copy(self.cin) if self.expand is not None else None
        dst.dw = self.dw.static_copy(hidden)
        dst.project = self.project.static_copy(hidden)
        dst.expansion, dst.kernel, dst.skip = self.expansion, self.kernel, False
        return dst


class BasicBlock(nn.Module):
    """ResNet basic block: 3x3 conv -> 3x3 conv, plus the input (or a 1x1 projection), then ReLU6.

    A block whose shortcut is the identity can be skipped (:meth:`configure`).
    """

    chained = (("conv1", "conv2"),)  # (a, b): a's output feeds b only (search_spaces.modules.folded)

    def __init__(self, cin: int, cout: int, stride: int, bits_choices: Sequence[int] = (8,)) -> None:
        super().__init__()
        self.cin, self.cout, self.stride = cin, cout, stride
        self.conv1 = ConvBNAct(cin, cout, 3, stride, bits_choices=bits_choices, act_signed=False)
        self.conv2 = ConvBNAct(cout, cout, 3, act=False, bits_choices=bits_choices, act_signed=False)
        self.shortcut = ConvBNAct(cin, cout, 1, stride, act=False, bits_choices=bits_choices, act_signed=False) \
            if stride != 1 or cin != cout else None
        self.relu = nn.ReLU6(inplace=True)
        self.skip = False

    @property
    def skippable(self) -> bool:
        return self.shortcut is None

    def configure(self, skip: bool) -> None:
        if skip and not self.skippable:
            raise ValueError("only a block with an identity shortcut can be skipped")
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.skip:
            return x
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        return self.relu(self.conv2(self.conv1(x)) + shortcut)

    def quant_layers(self) -> list[QConv2d]:
        """Quantised layers in genotype order: conv1, conv2, shortcut (if any)."""
        return [m.conv for m in (self.conv1, self.conv2, self.shortcut) if m is not None]

    def static_copy(self) -> nn.Module:
        if self.skip:
            return nn.Identity()
        dst = BasicBlock.__new__(BasicBlock)
        nn.Module.__init__(dst)
        dst.cin, dst.cout, dst.stride, dst.skip = self.cin, self.cout, self.stride, False
        dst.conv1 = self.conv1.static_copy(self.cin)
        dst.conv2 = self.conv2.static_copy(self.cout)
        dst.shortcut = self.shortcut.static_copy(self.cin) if self.shortcut is not None else None
        dst.relu = nn.ReLU6(inplace=True)
        return dst
