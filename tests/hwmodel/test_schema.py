"""Tests of hwmodel.schema: typed YAML -> dataclass loading with errors naming file and key path."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from hwmodel.schema import SchemaError, from_mapping, load_yaml, package_folder, to_mapping

FILE = "configs/example.yaml"


# --- small dataclasses (module level so that string annotations resolve) ------------------------


@dataclass(frozen=True)
class Inner:
    x: int
    label: str = "inner"


@dataclass(frozen=True)
class Outer:
    inner: Inner
    scale: float = 1.0


@dataclass(frozen=True)
class Top:
    outer: Outer
    name: str = "top"


@dataclass(frozen=True)
class Scalars:
    n: int
    flag: bool = False
    rate: float = 0.0
    text: str = ""


@dataclass(frozen=True)
class Lists:
    xs: list[int] = field(default_factory=list)
    ts: tuple[float, ...] = ()
    table: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Choice:
    mode: Literal["fast", "slow"] = "fast"


@dataclass(frozen=True)
class Opt:
    limit: int | None = 3
    child: Inner | None = None


@dataclass(frozen=True)
class Positive:
    value: int

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise ValueError(f"value: expected a positive integer, got {self.value}")


@dataclass(frozen=True)
class HoldsPositive:
    items: tuple[Positive, ...]
    single: Positive | None = None


@dataclass(frozen=True)
class Everything:
    name: str
    inner: Inner
    mode: Literal["fast", "slow"]
    xs: tuple[int, ...]
    ys: list[float]
    table: dict[str, Inner]
    maybe: float | None = None
    flag: bool = True


def _raises(cls, data, *, file=FILE) -> SchemaError:
    with pytest.raises(SchemaError) as info:
        from_mapping(cls, data, file=file)
    assert type(info.value) is SchemaError
    assert isinstance(info.value, ValueError)  # callers may catch ValueError
    return info.value


# --- unknown / missing keys ----------------------------------------------------------------------


def test_unknown_key_top_level_names_file_key_and_allowed_keys():
    err = _raises(Scalars, {"n": 1, "bogus": 2})
    msg = str(err)
    assert msg.startswith(f"{FILE}: bogus: ")
    assert "unknown key" in msg
    for allowed in ("flag", "n", "rate", "text"):
        assert repr(allowed) in msg
    assert err.file == FILE and err.key == "bogus"


def test_unknown_key_nested_gives_dotted_path_and_allowed_keys():
    err = _raises(Top, {"outer": {"inner": {"x": 1, "y": 2}}})
    msg = str(err)
    assert FILE in msg
    assert "outer.inner.y" in msg
    assert err.key == "outer.inner.y"
    assert "'x'" in msg and "'label'" in msg
    assert "unknown key" in msg


def test_missing_required_key_top_level():
    err = _raises(Scalars, {"flag": True})
    assert err.key == "n"
    assert str(err).startswith(f"{FILE}: n: ")
    assert "missing required key" in str(err)
    assert "an integer" in str(err)


def test_missing_required_key_nested():
    err = _raises(Top, {"outer": {"inner": {"label": "a"}}})
    assert err.key == "outer.inner.x"
    assert "missing required key" in str(err)
    assert FILE in str(err)


def test_missing_nested_dataclass_is_reported_at_its_key():
    err = _raises(Top, {})
    assert err.key == "outer"
    assert "missing required key" in str(err)


def test_empty_document_means_empty_mapping():
    err = _raises(Inner, None)
    assert err.key == "x"  # None is an empty mapping, so x is missing


def test_non_mapping_document_is_rejected():
    err = _raises(Inner, [1, 2])
    assert err.key == ""
    assert "<top level>" in str(err)
    assert "a mapping with keys" in str(err)


def test_non_mapping_for_nested_dataclass_names_key():
    err = _raises(Top, {"outer": {"inner": 5}})
    assert err.key == "outer.inner"
    assert "a mapping with keys" in str(err)


# --- types ---------------------------------------------------------------------------------------


def test_int_given_string():
    err = _raises(Scalars, {"n": "ten"})
    assert str(err) == f"{FILE}: n: expected an integer, got 'ten'"


def test_int_given_bool_is_rejected():
    err = _raises(Scalars, {"n": True})
    assert err.key == "n"
    assert "an integer" in str(err)


def test_int_given_float_is_rejected():
    err = _raises(Scalars, {"n": 1.5})
    assert err.key == "n"


def test_bool_given_int():
    err = _raises(Scalars, {"n": 1, "flag": 1})
    assert err.key == "flag"
    assert "true or false" in str(err)


def test_bool_given_string():
    err = _raises(Scalars, {"n": 1, "flag": "yes please"})
    assert err.key == "flag"


def test_str_given_int():
    err = _raises(Scalars, {"n": 1, "text": 3})
    assert err.key == "text"
    assert "a string" in str(err)


def test_list_of_int_with_a_string_reports_index():
    err = _raises(Lists, {"xs": [1, "two", 3]})
    assert err.key == "xs[1]"
    assert str(err).startswith(f"{FILE}: xs[1]: ")
    assert "'two'" in str(err)


def test_list_given_scalar():
    err = _raises(Lists, {"xs": 5})
    assert err.key == "xs"
    assert "a list of an integer" in str(err)


def test_nested_list_index_path():
    err = _raises(Everything, {
        "name": "e", "inner": {"x": 1}, "mode": "fast", "xs": [1], "ys": [1.0, "abc"], "table": {},
    })
    assert err.key == "ys[1]"


def test_dict_value_path():
    err = _raises(Lists, {"table": {"a": 1, "b": "x"}})
    assert err.key == "table.b"


def test_dict_of_dataclasses_path():
    err = _raises(Everything, {
        "name": "e", "inner": {"x": 1}, "mode": "fast", "xs": [], "ys": [],
        "table": {"k": {"x": "bad"}},
    })
    assert err.key == "table.k.x"


def test_float_accepts_int_and_returns_float():
    obj = from_mapping(Scalars, {"n": 1, "rate": 3}, file=FILE)
    assert obj.rate == 3.0 and type(obj.rate) is float


@pytest.mark.parametrize("text, expected", [("1.0e9", 1.0e9), ("2.5e-3", 2.5e-3), ("7", 7.0), ("1e9", 1e9)])
def test_float_accepts_numeric_strings(text, expected):
    obj = from_mapping(Scalars, {"n": 1, "rate": text}, file=FILE)
    assert obj.rate == expected and type(obj.rate) is float


def test_float_from_yaml_1_0e9_which_pyyaml_reads_as_string(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("n: 1\nrate: 1.0e9\n")
    data = load_yaml(path)
    assert data["rate"] == "1.0e9"  # the PyYAML quirk the loader works around
    obj = from_mapping(Scalars, data, file=path)
    assert obj.rate == 1.0e9


def test_float_rejects_non_numeric_string_and_bool():
    err = _raises(Scalars, {"n": 1, "rate": "fast"})
    assert err.key == "rate" and "a finite number" in str(err)
    err = _raises(Scalars, {"n": 1, "rate": True})
    assert err.key == "rate"


def test_tuple_field_becomes_tuple_and_list_field_stays_list():
    obj = from_mapping(Lists, {"xs": [1, 2], "ts": [1, "2.0e3"]}, file=FILE)
    assert obj.xs == [1, 2] and isinstance(obj.xs, list)
    assert obj.ts == (1.0, 2000.0) and isinstance(obj.ts, tuple)


# --- Literal / Optional ----------------------------------------------------------------------------


def test_literal_accepts_allowed_values():
    assert from_mapping(Choice, {"mode": "slow"}, file=FILE).mode == "slow"
    assert from_mapping(Choice, {}, file=FILE).mode == "fast"


def test_literal_rejects_other_values_and_lists_choices():
    err = _raises(Choice, {"mode": "medium"})
    assert err.key == "mode"
    assert "'fast'" in str(err) and "'slow'" in str(err)
    assert "'medium'" in str(err)


def test_optional_accepts_null_and_values():
    assert from_mapping(Opt, {"limit": None, "child": None}, file=FILE) == Opt(limit=None, child=None)
    assert from_mapping(Opt, {"limit": 5, "child": {"x": 2}}, file=FILE) == Opt(limit=5, child=Inner(x=2))


def test_optional_rejects_wrong_type():
    err = _raises(Opt, {"limit": "many"})
    assert err.key == "limit"
    assert "null" in str(err) and "an integer" in str(err)


def test_optional_nested_dataclass_reports_bad_value():
    err = _raises(Opt, {"child": 3})
    assert err.key == "child"


# --- nested dataclasses / __post_init__ ------------------------------------------------------------


def test_nested_dataclass_builds():
    obj = from_mapping(Top, {"outer": {"inner": {"x": 4}, "scale": "1.5e2"}, "name": "t"}, file=FILE)
    assert obj == Top(outer=Outer(inner=Inner(x=4), scale=150.0), name="t")


def test_post_init_value_error_is_reported_at_the_field_it_names():
    err = _raises(Positive, {"value": 0})
    assert err.key == "value"
    assert str(err) == f"{FILE}: value: expected a positive integer, got 0"
    assert err.__cause__ is None and err.__suppress_context__


def test_post_init_value_error_in_nested_item_reports_item_path():
    err = _raises(HoldsPositive, {"items": [{"value": 1}, {"value": -2}]})
    assert err.key == "items[1].value"
    assert str(err) == f"{FILE}: items[1].value: expected a positive integer, got -2"



def test_optional_nested_dataclass_error_is_at_least_reported_at_its_key():
    err = _raises(HoldsPositive, {"items": [], "single": {"value": 0}})
    assert err.key.startswith("single")
    assert FILE in str(err)


def test_post_init_value_error_in_optional_nested_keeps_message():
    err = _raises(HoldsPositive, {"items": [], "single": {"value": 0}})
    assert err.key == "single.value"
    assert "single.value: expected a positive integer, got 0" in str(err)


def test_wrong_type_inside_optional_nested_dataclass_keeps_key_path():
    err = _raises(Opt, {"child": {"x": "one"}})
    assert err.key == "child.x"
    assert "expected an integer, got 'one'" in str(err)


def test_unknown_key_inside_optional_nested_dataclass_keeps_key_path():
    err = _raises(Opt, {"child": {"x": 1, "typo": 2}})
    assert err.key == "child.typo"
    assert "unknown key" in str(err)


def test_path_object_as_file(tmp_path: Path):
    path = tmp_path / "sub" / "cfg.yaml"
    err = _raises(Scalars, {"n": "x"}, file=path)
    assert err.file == str(path)
    assert str(path) in str(err)


# --- load_yaml ---------------------------------------------------------------------------------------


def test_load_yaml_reads_file(tmp_path: Path):
    path = tmp_path / "ok.yaml"
    path.write_text("a: 1\nb: [x, y]\n")
    assert load_yaml(path) == {"a": 1, "b": ["x", "y"]}
    assert load_yaml(str(path)) == {"a": 1, "b": ["x", "y"]}


def test_load_yaml_empty_file_is_none(tmp_path: Path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_yaml(path) is None


def test_load_yaml_missing_file(tmp_path: Path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(SchemaError) as info:
        load_yaml(path)
    assert str(path) in str(info.value)
    assert "an existing YAML file" in str(info.value)


def test_load_yaml_directory_is_not_a_file(tmp_path: Path):
    with pytest.raises(SchemaError) as info:
        load_yaml(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_load_yaml_syntax_error_names_file_and_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("a: 1\nb: 2\nc: [1, 2\nd: 4\n")
    with pytest.raises(SchemaError) as info:
        load_yaml(path)
    err = info.value
    assert type(err) is SchemaError
    assert str(path) in str(err)
    assert err.key.startswith("line ")
    assert err.key == "line 4"  # where PyYAML notices the flow sequence opened on line 3 is unclosed
    assert "valid YAML" in str(err)
    assert err.__cause__ is None and err.__suppress_context__  # no PyYAML traceback chained


def test_load_yaml_bad_indentation_line(tmp_path: Path):
    path = tmp_path / "indent.yaml"
    path.write_text("top:\n  a: 1\n b: 2\n")
    with pytest.raises(SchemaError) as info:
        load_yaml(path)
    assert info.value.key == "line 3"
    assert str(path) in str(info.value)


# --- to_mapping --------------------------------------------------------------------------------------


def test_to_mapping_round_trip():
    data = {
        "name": "e",
        "inner": {"x": 1, "label": "lab"},
        "mode": "slow",
        "xs": [1, 2, 3],
        "ys": [0.5, 2.0],
        "table": {"a": {"x": 7, "label": "inner"}},
        "maybe": None,
        "flag": False,
    }
    obj = from_mapping(Everything, data, file=FILE)
    assert isinstance(obj.xs, tuple)
    plain = to_mapping(obj)
    assert plain == data
    assert isinstance(plain["xs"], list)  # tuples become lists
    # YAML-dumpable with safe_dump, and loads back to the same object
    again = from_mapping(Everything, yaml.safe_load(yaml.safe_dump(plain)), file=FILE)
    assert again == obj


def test_to_mapping_includes_defaults():
    assert to_mapping(Top(outer=Outer(inner=Inner(x=1)))) == {
        "outer": {"inner": {"x": 1, "label": "inner"}, "scale": 1.0},
        "name": "top",
    }


def test_to_mapping_leaves_classes_and_scalars_alone():
    assert dataclasses.is_dataclass(Inner)
    assert to_mapping(Inner) is Inner
    assert to_mapping(3) == 3
    assert to_mapping((1, (2, 3))) == [1, [2, 3]]


# --- package_folder: where the shipped data files are ------------------------------------------


def test_package_folder_is_the_data_package_folder():
    import accelerators

    folder = package_folder("accelerators")
    assert isinstance(folder, Path) and folder == Path(accelerators.__file__).parent
    assert (folder / "edge_tpu_quad" / "system.yaml").is_file()


def test_package_folder_of_a_missing_package_says_to_reinstall():
    with pytest.raises(RuntimeError, match=r"no_such_eenas_package: expected an installed package.*pip install -e \."):
        package_folder("no_such_eenas_package")


def test_package_folder_refuses_a_namespace_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "eenas_namespace_only").mkdir()  # no __init__.py: not one folder Python can name
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError, match="eenas_namespace_only: expected a package in a folder"):
        package_folder("eenas_namespace_only")
