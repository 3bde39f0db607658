"""The shipped accelerator system descriptions, installed as package data (see ``README.md`` here).

Nothing to import: ``hwmodel.accelerators_dir()`` finds this folder through ``importlib.resources``.
"""
