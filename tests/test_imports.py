"""Every module of the three packages imports on its own (no import circles between them)."""

from __future__ import annotations

import subprocess
import sys

# one interpreter; before each module, every module of our packages is forgotten, so each is imported
# first, as a user's script would (third-party packages stay loaded: they are not what is checked)
CODE = """
import importlib, pkgutil, sys
OURS = ("nas", "hwmodel", "search_spaces")
names = []
for top in OURS:
    pkg = importlib.import_module(top)
    names += [top] + [m.name for m in pkgutil.walk_packages(pkg.__path__, top + ".") if "__main__" not in m.name]
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m.split(".")[0] in OURS]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print(len(names))
print("\\n".join(failed))
"""


def test_every_module_imports_alone():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.splitlines()
    assert int(out[0]) > 40, out[0]  # the walk found the packages' modules
    assert [line for line in out[1:] if line] == []
