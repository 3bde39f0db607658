"""Typed loading of YAML mappings into dataclasses, with errors that name the file and key path.

``from_mapping(cls, data, file=...)`` checks unknown keys, missing required fields and types
(int, float, bool, str, Literal, tuples, lists, dicts, nested dataclasses, ``X | None``) and
reports the first problem as one :class:`SchemaError`:
``configs/x.yaml: search.n_trials: expected an integer, got 'ten'``.
A ValueError raised by a dataclass's ``__post_init__`` is reported at that dataclass's key path.
:func:`package_folder` finds the shipped YAML files (accelerators, configs) where they are installed.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import math
import reprlib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")

MAX_FILE_BYTES = 4 * 1024 * 1024  # a YAML file larger than this is refused unread
MAX_NODES = 100_000  # YAML nodes after aliases are expanded ("billion laughs" stops here)
INTERNAL = {"internal": True}  # field metadata: set by the loader, not a key users write
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60
_short.maxlist = _short.maxdict = 6
_short.maxlevel = 2


class SchemaError(ValueError):
    """Bad input: names the file, the key path and what was expected."""

    def __init__(self, file: str | Path, key: str, message: str) -> None:
        super().__init__(f"{file}: {key or '<top level>'}: {message}")
        self.file, self.key, self.message = str(file), key, message


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int], path: Path) -> int:
    """Nodes of ``node`` with every alias expanded (shared children counted each time they appear)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        mark = node.start_mark
        raise SchemaError(path, f"line {mark.line + 1}", "expected YAML without recursive aliases")
    open_nodes.add(key)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    size = 1
    for child in children:
        size += _expanded_size(child, sizes, open_nodes, path)
        if size > MAX_NODES:
            break
    open_nodes.discard(key)
    sizes[key] = size
    return size


def package_folder(package: str) -> Path:
    """The folder of an installed package (code or data, e.g. ``accelerators``) as a file-system Path.

    Found through ``importlib.resources``, so it is the installed copy for a wheel and the source
    folder for an editable install or a checkout.
    """
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise RuntimeError(f"{package}: expected an installed package of eenas, found none; an editable install "
                           f"made before it was added needs `pip install -e .` again") from None
    if not isinstance(root, Path):
        raise RuntimeError(f"{package}: expected a package in a folder, found {root!r} (a zip archive or a "
                           f"namespace package); install eenas with pip, which unpacks its files")
    return root


def parse_yaml(text: str, path: str | Path) -> Any:
    """``yaml.safe_load`` of ``text``, refusing documents that expand to more than ``MAX_NODES`` nodes."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # the reader already refuses control characters
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {}, set(), Path(path))
        if size > MAX_NODES:
            raise SchemaError(path, "file", f"expected YAML of at most {MAX_NODES} values once aliases are expanded "
                              f"(this one expands to more)")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "file"
        problem = getattr(exc, "problem", None) or short_repr(str(exc))
        raise SchemaError(path, where, f"expected valid YAML ({problem})") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(path: str | Path) -> Any:
    """Safe YAML of a UTF-8 file of at most ``MAX_FILE_BYTES``; SchemaError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise SchemaError(path, "", "an existing YAML file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SchemaError(path, "file",
                          f"expected a YAML file of at most {MAX_FILE_BYTES // 2**20} MiB, found {size} bytes")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(path, "file",
                          f"expected UTF-8 text (byte {exc.start} is not; is this a YAML file?)") from None
    return parse_yaml(text, path)


def short_repr(value: Any) -> str:
    """``repr`` cut to a few dozen characters, whatever the size of ``value``."""
    return _short.repr(value)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a finite number"
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
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return f"a mapping with keys {user_keys(tp)}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


class _Bad:
    """The error for a value that does not fit its type, formatted only when raised."""

    def __init__(self, file: str | Path, key: str, tp: Any, value: Any) -> None:
        self.file, self.key, self.tp, self.value = file, key, tp, value

    def error(self) -> SchemaError:
        return SchemaError(self.file, self.key, f"expected {_describe(self.tp)}, got {short_repr(self.value)}")


def _convert(tp: Any, value: Any, file: str | Path, key: str) -> Any:
    origin = typing.get_origin(tp)
    bad = _Bad(file, key, tp, value)
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
                raise bad.error() from None  # a scalar: say that null would also do
        for arg in options:
            try:
                return _convert(arg, value, file, key)
            except SchemaError:
                continue
        raise bad.error()
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad.error()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad.error()
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # PyYAML reads 1.0e9 (no sign in the exponent) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None and math.isfinite(number):
            return number
        raise bad.error()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad.error()
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise bad.error()
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise bad.error()
        item_tp = typing.get_args(tp)[0]
        items = [_convert(item_tp, v, file, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise bad.error()
        key_tp, val_tp = typing.get_args(tp)
        return {_convert(key_tp, k, file, key): _convert(val_tp, v, file, f"{key}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, file=file, prefix=key)
    raise TypeError(f"unsupported field type {tp!r}")


def user_keys(cls: type) -> list[str]:
    """The keys a user may write for dataclass ``cls`` (its init fields not marked ``INTERNAL``)."""
    return [f.name for f in dataclasses.fields(cls) if f.init and not f.metadata.get("internal")]


def from_mapping(cls: type[T], data: Any, *, file: str | Path, prefix: str = "",
                 internal: dict[str, Any] | None = None) -> T:
    """Build dataclass ``cls`` from ``data`` (a mapping), checking keys and types recursively.

    ``internal``: values of the fields marked ``INTERNAL`` (e.g. the file a spec was read from).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SchemaError(file, prefix, f"expected {_describe(cls)}, got {short_repr(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name in user_keys(cls)}  # type: ignore[arg-type]
    dotted = f"{prefix}." if prefix else ""
    for name in data:
        if name not in fields:
            raise SchemaError(file, f"{dotted}{name}", f"unknown key; expected one of {sorted(fields)}")
    kwargs: dict[str, Any] = dict(internal or {})
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
        # a check that names its field ("tile_rows: expected ...") is reported at that field's key
        name, sep, rest = str(exc).partition(": ")
        if sep and name in fields:
            raise SchemaError(file, f"{dotted}{name}", rest) from None
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
