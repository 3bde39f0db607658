"""Matplotlib helpers shared by every plot of the project (headless backend, save and close)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: str | Path) -> Path:
    """Lay out, write and close ``fig``; returns the path."""
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    pyplot().close(fig)
    return path
