"""Registry of search spaces by name (a timm-style registry and one factory)."""

from __future__ import annotations

from typing import Any

from search_spaces.base import SearchSpace

_SPACES: dict[str, type[SearchSpace]] = {}


def register_space(cls: type[SearchSpace]) -> type[SearchSpace]:
    """Class decorator: make ``cls`` available to :func:`create_space` under ``cls.name``."""
    if cls.name in _SPACES and _SPACES[cls.name] is not cls:
        raise ValueError(f"search space {cls.name!r} is already registered")
    _SPACES[cls.name] = cls
    return cls


def list_spaces() -> list[str]:
    """Names of all registered search spaces."""
    return sorted(_SPACES)


def space_class(name: str) -> type[SearchSpace]:
    """The class registered as ``name``; KeyError lists the known names."""
    try:
        return _SPACES[name]
    except KeyError:
        raise KeyError(f"unknown search space {name!r}; registered: {', '.join(list_spaces())}") from None


def create_space(name: str, options: Any = None, **kwargs: Any) -> SearchSpace:
    """Instantiate a registered search space with an options object or keyword options."""
    return space_class(name)(options, **kwargs)


def space_from_config(config: dict[str, Any]) -> SearchSpace:
    """Inverse of :attr:`SearchSpace.config`."""
    cls = space_class(config["name"])
    return cls(None, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in config.get("options", {}).items()})


def same_space(a: dict[str, Any], b: dict[str, Any], *, ignore: tuple[str, ...] = ()) -> bool:
    """Whether two :attr:`SearchSpace.config` describe the same space, options left out taking their
    defaults (a checkpoint written before an option existed matches a space at that option's
    default); ``ignore``: options allowed to differ."""
    try:
        ca, cb = space_from_config(a).config, space_from_config(b).config
    except (KeyError, TypeError, ValueError):
        return False
    for key in ignore:
        ca["options"].pop(key, None)
        cb["options"].pop(key, None)
    return ca == cb
