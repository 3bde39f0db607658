"""Typed loading of YAML mappings into dataclasses, with errors that name the file and key path.

``from_mapping(cls, data, file=...)`` checks unknown keys, missing required fields and types
(int, float, bool, str, Literal, tuples, lists, dicts, nested dataclasses, ``X | None``) and
reports the first problem as one :class:`SchemaError`:
``configs/x.yaml: search.n_trials: expected an integer, got 'ten'``.
A ValueError raised by a dataclass's ``__post_init__`` is reported at that dataclass's key path.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")


class SchemaError(ValueError):
    """Bad input: names the file, the key path and what was expected."""

    def __init__(self, file: str | Path, key: str, message: str) -> None:
        super().__init__(f"{file}: {key or '<top level>'}: {message}")
        self.file, self.key, self.message = str(file), key, message


def load_yaml(path: str | Path) -> Any:
    """``yaml.safe_load`` of a file; SchemaError for a missing file or a YAML syntax error."""
    path = Path(path)
    if not path.is_file():
        raise SchemaError(path, "", "an existing YAML file")
    try:
        with path.open() as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "file"
        raise SchemaError(path, where, f"valid YAML ({getattr(exc, 'problem', exc)})") from None


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of {_describe(typing.get_args(tp)[1])}"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if dataclasses.is_dataclass(tp):
        return f"a mapping with keys {[f.name for f in dataclasses.fields(tp)]}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, file: str | Path, key: str) -> Any:
    origin = typing.get_origin(tp)
    bad = SchemaError(file, key, f"expected {_describe(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # X | None: keep X's own error when it points deeper than this key
            try:
                return _convert(options[0], value, file, key)
            except SchemaError as exc:
                if exc.key != key or dataclasses.is_dataclass(options[0]):
                    raise  # a nested key path or a dataclass's own check: already precise
                raise bad from None  # a scalar: say that null would also do
        for arg in options:
            try:
                return _convert(arg, value, file, key)
            except SchemaError:
                continue
        raise bad
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads 1.0e9 (no sign in the exponent) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise bad
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise bad
        item_tp = typing.get_args(tp)[0]
        items = [_convert(item_tp, v, file, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        key_tp, val_tp = typing.get_args(tp)
        return {_convert(key_tp, k, file, key): _convert(val_tp, v, file, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, file=file, prefix=key)
    raise TypeError(f"unsupported field type {tp!r}")


def from_mapping(cls: type[T], data: Any, *, file: str | Path, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data`` (a mapping), checking keys and types recursively."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SchemaError(file, prefix, f"expected {_describe(cls)}, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    dotted = f"{prefix}." if prefix else ""
    for name in data:
        if name not in fields:
            raise SchemaError(file, f"{dotted}{name}", f"unknown key; expected one of {sorted(fields)}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], file, f"{dotted}{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise SchemaError(file, f"{dotted}{name}", f"missing required key ({_describe(hints[name])})")
    try:
        return cls(**kwargs)
    except SchemaError:
        raise
    except (ValueError, TypeError) as exc:
        raise SchemaError(file, prefix, str(exc)) from None


def to_mapping(obj: Any) -> Any:
    """Dataclass -> plain YAML/JSON-ready data (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_mapping(v) for k, v in obj.items()}
    return obj
