"""BENCHMARKS.md and the README's figures block are exactly what benchmarks/render.py writes from the JSON."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_documents_equal_what_render_writes():
    spec = importlib.util.spec_from_file_location("render", ROOT / "benchmarks" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    documents = render.documents()
    assert set(documents) == {ROOT / "BENCHMARKS.md", ROOT / "README.md"}
    for path, text in documents.items():
        assert path.read_text() == text, f"{path.name}: stale; run python benchmarks/render.py"
