"""Keeping freed memory in the process (glibc's mallopt)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = "from nas.study.memory import keep_freed_memory; print(keep_freed_memory(), keep_freed_memory())"


def _run(env_value: str | None) -> str:
    env = {"PATH": "/usr/bin:/bin"} | ({"EENAS_KEEP_FREED_MEMORY": env_value} if env_value is not None else {})
    return subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_malloc_keeps_freed_memory_unless_turned_off():
    # a fresh process each time: the setting lasts for the life of the process
    assert _run(None).split() == ["True", "True"]
    assert _run("0").split() == ["False", "False"]


def test_a_c_library_without_mallopt_is_left_alone(monkeypatch):
    from nas.study import memory

    def no_libc(*args, **kwargs):
        raise OSError("no such library")

    monkeypatch.setattr(memory.ctypes, "CDLL", no_libc)
    assert memory._mallopt() is False
