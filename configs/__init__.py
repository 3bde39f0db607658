"""The shipped run configurations, installed as package data.

Nothing to import: ``nas.config.CONFIGS_DIR`` is this folder, found through ``importlib.resources``.
"""
