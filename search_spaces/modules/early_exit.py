"""Early-exit networks: exit heads, the weight-sharing supernet and the static networks it yields.

The supernet holds an elastic backbone (stem + blocks) and, at every candidate mounting point, one
exit head per branch depth. :meth:`Supernet.apply` sets a genotype's backbone choices and bits in
place (training and fast evaluation); :meth:`Supernet.extract` returns a standalone
:class:`EarlyExitNet` holding copies of only the chosen ops at their chosen shapes and bits, whose
outputs equal the supernet's bit for bit. Exported networks are such extracts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from search_spaces.genotype import Genotype, HeadKey
from search_spaces.modules.quant import QLinear, _Switchable


def quant_layers(module: nn.Module) -> list[_Switchable]:
    """Switchable quantised layers of ``module`` in genotype order."""
    if hasattr(module, "quant_layers"):
        return list(module.quant_layers())
    return [m for m in module.modules() if isinstance(m, _Switchable)]


class ExitHead(nn.Module):
    """Exit branch: MaxPool down to ``pool_out`` x ``pool_out`` -> flatten -> 1 or 2 FC layers.

    Depth 1: Linear(C*p*p -> classes). Depth 2: Linear(C*p*p -> C*p*p/2) -> ReLU6 -> Linear(-> classes).
    """

    def __init__(self, channels: int, in_hw: int, num_classes: int, depth: int, pool_out: int = 4,
                 bits_choices: Sequence[int] = (8,)) -> None:
        super().__init__()
        if depth not in (1, 2):
            raise ValueError(f"exit branch depth must be 1 or 2, got {depth}")
        if in_hw % pool_out:
            raise ValueError(f"exit input size {in_hw} is not a multiple of the pooled size {pool_out}")
        self.pool_kernel = in_hw // pool_out
        features = channels * pool_out * pool_out
        if depth == 1:
            self.fc = nn.Sequential(QLinear(features, num_classes, bits_choices, act_signed=True))
        else:
            hidden = features // 2
            self.fc = nn.Sequential(QLinear(features, hidden, bits_choices, act_signed=True), nn.ReLU6(),
                                    QLinear(hidden, num_classes, bits_choices, act_signed=False))

    def set_bits(self, w_bits: int, a_bits: int) -> None:
        """Bit-widths of every FC layer of the branch."""
        for layer in quant_layers(self):
            layer.set_bits(w_bits, a_bits)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled, flattened features the FC layers read (the same for every head with this
        ``pool_kernel`` at a mount: an evaluator running many head variants pools once)."""
        if self.pool_kernel > 1:
            x = F.max_pool2d(x, self.pool_kernel)
        return torch.flatten(x, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(x))

    def static_copy(self) -> ExitHead:
        dst = ExitHead.__new__(ExitHead)
        nn.Module.__init__(dst)
        dst.pool_kernel = self.pool_kernel
        dst.fc = nn.Sequential(*[m.static_copy() if isinstance(m, QLinear) else nn.ReLU6() for m in self.fc])
        return dst


def exit_taken(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """Boolean mask of samples whose top softmax probability reaches ``threshold``."""
    return torch.softmax(logits.float(), dim=1).amax(dim=1) >= threshold


class EarlyExitNet(nn.Module):
    """A static early-exit network: stem, backbone blocks and exit heads after given blocks.

    ``mounts[i]`` is the index of the block after which exit ``i`` is attached; the last mount is
    the last block. ``threshold`` is the exit confidence (top softmax probability); ``thresholds``
    optionally sets one per early exit (policies such as the accuracy-target rule).
    """

    def __init__(self, stem: nn.Module, blocks: Sequence[nn.Module], mounts: Sequence[int], heads: Sequence[ExitHead],
                 threshold: float, thresholds: Sequence[float] | None = None) -> None:
        super().__init__()
        if len(mounts) != len(heads) or not mounts:
            raise ValueError("need one head per mounting point and at least one exit")
        if list(mounts) != sorted(set(mounts)) or mounts[-1] != len(blocks) - 1:
            raise ValueError(f"mounting points must ascend and end at the last block, got {list(mounts)}")
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.heads = nn.ModuleList(heads)
        self.mounts = [int(m) for m in mounts]
        self.threshold = float(threshold)
        self.thresholds = [float(t) for t in thresholds] if thresholds is not None else None

    def exit_thresholds(self, threshold: float | None = None) -> list[float]:
        """Confidence threshold of each early exit (the final exit takes every remaining sample)."""
        if threshold is None and self.thresholds is not None:
            return list(self.thresholds)
        thr = self.threshold if threshold is None else float(threshold)
        return [thr] * (len(self.heads) - 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output (stem and every block, no exit head)."""
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        return h

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logits of every exit for every sample (no exiting), in exit order."""
        outputs: list[torch.Tensor] = []
        h = self.stem(x)
        start = 0
        for mount, head in zip(self.mounts, self.heads):
            for block in self.blocks[start : mount + 1]:
                h = block(h)
            start = mount + 1
            outputs.append(head(h))
        return outputs

    @torch.no_grad()
    def early_exit(self, x: torch.Tensor, threshold: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Real early-exit inference: each sample leaves at the first exit whose top softmax
        probability reaches that exit's threshold; only the remaining samples run the next stage.

        Returns (logits of the exit each sample took, index of that exit).
        """
        thresholds = self.exit_thresholds(threshold)
        n = x.shape[0]
        logits_out: torch.Tensor | None = None
        exit_index = torch.full((n,), -1, dtype=torch.long, device=x.device)
        remaining = torch.arange(n, device=x.device)
        h = self.stem(x)
        start = 0
        last = len(self.heads) - 1
        for i, (mount, head) in enumerate(zip(self.mounts, self.heads)):
            for block in self.blocks[start : mount + 1]:
                h = block(h)
            start = mount + 1
            logits = head(h)
            if logits_out is None:
                logits_out = logits.new_empty(n, logits.shape[1])
            take = torch.ones_like(remaining, dtype=torch.bool) if i == last else exit_taken(logits, thresholds[i])
            logits_out[remaining[take]] = logits[take]
            exit_index[remaining[take]] = i
            remaining, h = remaining[~take], h[~take]
            if remaining.numel() == 0:
                break
        assert logits_out is not None
        return logits_out, exit_index


class Supernet(nn.Module):
    """Weight-sharing early-exit supernet.

    ``heads`` maps ``HeadKey(mount, depth).name`` to an :class:`ExitHead`; every candidate mounting point (and
    the last block) carries one head per allowed depth. Subclasses configure the backbone for a
    genotype in :meth:`configure_backbone` (the default: the backbone is fixed).
    """

    def __init__(self, stem: nn.Module, blocks: Sequence[nn.Module], heads: dict[str, ExitHead]) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.heads = nn.ModuleDict(heads)

    def configure_backbone(self, genotype: Genotype) -> None:
        """Set the blocks' active choices for ``genotype`` (a fixed backbone has none)."""

    def backbone_quant_layers(self) -> list[_Switchable]:
        """Quantised backbone layers in the order of :attr:`Genotype.weight_bits`."""
        return quant_layers(self.stem) + [q for b in self.blocks for q in quant_layers(b)]

    def head(self, mount: int, depth: int) -> ExitHead:
        """The exit head for a mounting point and branch depth."""
        key = HeadKey(mount, depth).name
        if key not in self.heads:
            raise KeyError(f"no exit head after block {mount} with depth {depth}")
        return self.heads[key]

    def apply_bits(self, weight_bits: Sequence[int], act_bits: Sequence[int]) -> None:
        """Set backbone bit-widths, one (weight, activation) pair per quantised layer."""
        layers = self.backbone_quant_layers()
        if len(weight_bits) != len(layers) or len(act_bits) != len(layers):
            raise ValueError(
                f"expected {len(layers)} backbone bit-widths, got {len(weight_bits)} weight / {len(act_bits)} act"
            )
        for layer, wb, ab in zip(layers, weight_bits, act_bits):
            layer.set_bits(wb, ab)

    def configure(self, genotype: Genotype) -> list[ExitHead]:
        """Configure backbone and bits in place for ``genotype``; return its exit heads in order."""
        self.configure_backbone(genotype)
        self.apply_bits(genotype.weight_bits, genotype.act_bits)
        mounts = [*genotype.exits, len(self.blocks) - 1]
        heads = []
        for mount, depth, wb, ab in zip(mounts, genotype.branch_depths, genotype.exit_weight_bits,
                                        genotype.exit_act_bits):
            head = self.head(mount, depth)
            head.set_bits(wb, ab)
            heads.append(head)
        return heads

    def subnet(self, genotype: Genotype) -> EarlyExitNet:
        """The genotype's network sharing this supernet's modules (configured in place)."""
        heads = self.configure(genotype)
        return EarlyExitNet(self.stem, list(self.blocks), [*genotype.exits, len(self.blocks) - 1], heads,
                            genotype.threshold)

    @torch.no_grad()
    def extract(self, genotype: Genotype) -> EarlyExitNet:
        """A standalone network holding copies of only the genotype's ops, shapes and bits."""
        heads = self.configure(genotype)
        in_channels = _input_channels(self.stem)
        stem = self.stem.static_copy(in_channels)
        blocks = [b.static_copy() for b in self.blocks]
        net = EarlyExitNet(stem, blocks, [*genotype.exits, len(self.blocks) - 1], [h.static_copy() for h in heads],
                           genotype.threshold)
        return net.train(self.training)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits of every head (all mounting points, all depths), keyed like :attr:`heads`."""
        by_mount: dict[int, list[str]] = {}
        for key in self.heads:
            by_mount.setdefault(HeadKey.parse(key).mount, []).append(key)
        out: dict[str, torch.Tensor] = {}
        h = self.stem(x)
        for i, block in enumerate(self.blocks):
            h = block(h)
            for key in by_mount.get(i, []):
                out[key] = self.heads[key](h)
        return out


def _input_channels(stem: nn.Module) -> int:
    first = quant_layers(stem)[0]
    return int(first.in_channels)
