"""How operand precision enters the cost model, beyond what ZigZag does.

ZigZag scales memory traffic and capacity with operand bits, but its MAC energy is
``unit_energy x MACs`` and its cycle count ignores precision. Two models fill the gap, both declared
per compute core in the system file:

- :class:`MacEnergyModel`: MAC energy as a function of weight and activation bits. The default
  ``product`` model follows the multiplier's area and energy, which grow with the product of its
  operand widths, plus a fixed share for the accumulator and pipeline registers:

      E_mac(b_w, b_a) = E_ref * (fixed_fraction + (1 - fixed_fraction) * b_w * b_a / reference_bits^2)

  Source: M. Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm): an 8-bit integer multiply
  costs 0.2 pJ and a 32-bit one 3.1 pJ (about (32/8)^2 = 16x), while an 8-bit add costs 0.03 pJ and
  a 32-bit one 0.1 pJ (about linear). ``constant`` keeps ZigZag's bit-blind MAC energy (the
  reference paper's setting).
- :class:`PrecisionScaling`: a precision-scalable array (Bit Fusion, Sharma et al., ISCA 2018)
  performs ``factor`` MACs per PE per cycle when both operands fit in fewer bits. It is modelled by
  widening one array dimension by that factor, so ZigZag maps the layer onto a larger array with
  the same memories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class MacEnergyModel:
    """MAC energy versus operand bits (see the module docstring). ``unit_energy`` holds at ``reference_bits``."""

    model: Literal["product", "constant"] = "product"
    reference_bits: int = 8
    fixed_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.reference_bits < 1:
            raise ValueError(f"reference_bits: expected a positive integer, got {self.reference_bits}")
        if not 0.0 <= self.fixed_fraction <= 1.0:
            raise ValueError(f"fixed_fraction: expected a number in [0, 1], got {self.fixed_fraction}")

    def scale(self, w_bits: int, a_bits: int) -> float:
        """Energy of one MAC at (w_bits, a_bits) relative to one at the reference bits."""
        if self.model == "constant":
            return 1.0
        product = (w_bits * a_bits) / (self.reference_bits * self.reference_bits)
        return self.fixed_fraction + (1.0 - self.fixed_fraction) * product


@dataclass(frozen=True)
class PrecisionScaling:
    """Precision-scalable array: ``factors[b] = f`` means f MACs per PE per cycle when both operands
    have at most b bits; modelled by widening array dimension ``dimension`` f times."""

    dimension: str
    factors: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = {b: f for b, f in self.factors.items() if b < 1 or f < 1}
        if bad:
            raise ValueError(f"factors: expected positive bit-widths mapped to factors >= 1, got {bad}")

    def factor(self, w_bits: int, a_bits: int) -> int:
        """MACs per PE per cycle for a layer with these operand widths."""
        widest = max(w_bits, a_bits)
        fitting = [b for b in self.factors if widest <= b]
        return self.factors[min(fitting)] if fitting else 1

    def __hash__(self) -> int:
        return hash((self.dimension, tuple(sorted(self.factors.items()))))
