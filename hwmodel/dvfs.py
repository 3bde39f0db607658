"""Dynamic voltage and frequency scaling: latency in seconds and energy at an operating point.

Energies in the core files hold at ``reference_voltage_v``. At an operating point (f, V, P_static):

- latency (s) = cycles / f (cycle counts do not change with the clock);
- dynamic energy scales with V^2 (E = C V^2 per switched capacitance);
- static energy = P_static * latency (s).

So power is P = C V^2 f + P_static, as in the layer-skipping / DVFS study the project follows. With
V roughly proportional to f (the high-performance zone), dynamic energy per inference grows with
f^2 while static energy falls with 1/f, so EDP (J x s) has an interior optimum; in a zone where V is
constant it is minimal at the highest frequency.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OperatingPoint:
    """One DVFS point: clock (Hz), supply voltage (V), static power (W)."""

    name: str
    frequency_hz: float
    voltage_v: float
    static_power_w: float = 0.0

    def __post_init__(self) -> None:
        if self.frequency_hz <= 0 or self.voltage_v <= 0 or self.static_power_w < 0:
            raise ValueError(f"operating point {self.name!r}: expected frequency_hz > 0, voltage_v > 0, "
                             f"static_power_w >= 0")


@dataclass(frozen=True)
class DvfsSpec:
    """Operating points of a system; ``default`` names the one reported unless another is asked for."""

    reference_voltage_v: float
    points: tuple[OperatingPoint, ...]
    default: str | None = None

    def __post_init__(self) -> None:
        if self.reference_voltage_v <= 0:
            raise ValueError(f"reference_voltage_v: expected a positive number, got {self.reference_voltage_v}")
        if not self.points:
            raise ValueError("points: expected at least one operating point")
        names = [p.name for p in self.points]
        if len(set(names)) != len(names):
            raise ValueError(f"points: expected distinct names, got {names}")
        if self.default is not None and self.default not in names:
            raise ValueError(f"default: expected one of {names}, got {self.default!r}")

    def point(self, name: str | None = None) -> OperatingPoint:
        """The named point, else the default, else the first."""
        wanted = name or self.default or self.points[0].name
        for p in self.points:
            if p.name == wanted:
                return p
        raise KeyError(f"unknown operating point {wanted!r}; known: {[p.name for p in self.points]}")


def voltage_scale(point: OperatingPoint, reference_voltage_v: float) -> float:
    """Factor on dynamic energy at ``point``: (V / V_ref)^2."""
    return (point.voltage_v / reference_voltage_v) ** 2


def static_energy_pj(cycles: float, point: OperatingPoint) -> float:
    """Static energy (pJ) spent over ``cycles`` at ``point``."""
    return point.static_power_w * (cycles / point.frequency_hz) * 1e12
