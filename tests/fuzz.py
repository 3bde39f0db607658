"""Hypothesis strategies for malformed input, shared by the loaders' property tests.

``mutations(data)`` takes a valid nested mapping (a shipped config or accelerator file) and replaces
one value at a random key path with a hostile one: wrong types, signs, zero, huge or non-finite
numbers, long strings, deep nesting, or a YAML alias bomb once dumped. ``yaml_texts()`` adds raw
text and bytes. ``bounded()`` checks that one load stays within a time and memory bound.
"""

from __future__ import annotations

import contextlib
import copy
import resource
import time
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

SECONDS = 5.0  # one malformed file may take this long to refuse
MEGABYTES = 300  # ... and grow the process by at most this much

hostile_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([0, -1, 1, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["", "nan", "-inf", "1e999", "0x10", "null", "~", "\x00", "é" * 3, "x" * 10_000]),
)
hostile_values = st.recursive(hostile_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def key_paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a nested mapping / list (the root included)."""
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += key_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += key_paths(value, (*prefix, i))
    return out


def _replaced(data: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@st.composite
def mutations(draw: st.DrawFn, data: Any) -> Any:
    """``data`` with one value replaced by a hostile one, or one key renamed, dropped or added."""
    path = draw(st.sampled_from(key_paths(data)))
    action = draw(st.sampled_from(["replace", "replace", "replace", "drop", "rename", "add"]))
    if action == "replace" or not path:
        return _replaced(data, path, draw(hostile_values))
    parent = copy.deepcopy(data)
    node = parent
    for key in path[:-1]:
        node = node[key]
    if isinstance(node, dict):
        if action == "drop":
            node.pop(path[-1])
        elif action == "rename":
            node[f"{path[-1]}_{draw(st.text(max_size=3))}"] = node.pop(path[-1])
        else:
            node[draw(st.text(min_size=1, max_size=8))] = draw(hostile_values)
    return parent


BOMB = "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))

yaml_texts = st.one_of(
    st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from([BOMB + "search: *i\n", "a: &a [*a]\n", "[" * 500, "- " * 300, "{x: " * 200,
                     "!!python/object:os.system {}\n",
                     "key: !!binary AAAA\n", "? [a, b]\n: c\n", "x: 1\nx: 2\n", "\t- tab\n"]),
)


@contextlib.contextmanager
def bounded() -> Iterator[None]:
    """Assert that the block ran within ``SECONDS`` and grew the peak resident memory by < ``MEGABYTES``."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    yield
    elapsed = time.perf_counter() - t0
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    assert elapsed < SECONDS, f"took {elapsed:.1f} s"
    assert grown < MEGABYTES, f"peak memory grew {grown:.0f} MB"
