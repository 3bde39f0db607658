"""The supernet classes of the shipped spaces: how each configures its backbone from a genotype."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from search_spaces.genotype import Genotype
from search_spaces.modules.early_exit import Supernet


class MobileNetV2Supernet(Supernet):
    """The elastic MobileNetV2 supernet: configures each block from a genotype's backbone choices
    (``block_choices``: genotype -> (kernel, expansion, skipped) per block)."""

    def __init__(self, block_choices: Callable[[Genotype], Sequence[tuple[int, int, bool]]], stem: nn.Module,
                 blocks: Sequence[nn.Module], heads: dict[str, Any]) -> None:
        super().__init__(stem, blocks, heads)
        self._choices = block_choices

    def configure_backbone(self, genotype: Genotype) -> None:
        for block, (kernel, expansion, skip) in zip(self.blocks, self._choices(genotype)):
            block.configure(expansion, kernel, skip)


class ResNetSupernet(Supernet):
    """Configures each block's skip flag from a genotype's backbone."""

    def configure_backbone(self, genotype: Genotype) -> None:
        skips = genotype.backbone or (0,) * len(self.blocks)
        for block, skip in zip(self.blocks, skips):
            block.configure(bool(skip))
