from __future__ import annotations

import json

import pytest

from search_spaces import Genotype, GenotypeError


def make(**overrides):
    base = dict(exits=(1, 4), branch_depths=(1, 2, 1), weight_bits=(8, 4, 8), act_bits=(8, 8, 4),
                exit_weight_bits=(8, 4, 8), exit_act_bits=(8, 8, 8), threshold=0.85)
    return Genotype(**{**base, **overrides})


def test_hashable_and_equal_by_value():
    a, b = make(), make()
    assert a == b and hash(a) == hash(b)
    assert len({a, b, make(threshold=0.9)}) == 2


def test_json_round_trip():
    g = make()
    assert Genotype.from_json(g.to_json()) == g
    assert json.loads(g.to_json())["exits"] == [1, 4]
    assert Genotype.from_dict(json.loads(json.dumps(g.to_dict()))) == g


@pytest.mark.parametrize("overrides, fragment", [
    ({"exits": (4, 1)}, "exits"),
    ({"branch_depths": (1, 2)}, "branch_depths"),
    ({"exit_act_bits": (8,)}, "exit_act_bits"),
    ({"act_bits": (8, 8)}, "act_bits"),
    ({"threshold": 1.5}, "threshold"),
    ({"weight_bits": (8, "4", 8)}, "weight_bits"),
])
def test_invalid_genotypes_name_the_field(overrides, fragment):
    with pytest.raises(GenotypeError, match=fragment):
        make(**overrides)


def test_from_dict_rejects_unknown_and_missing_keys():
    data = make().to_dict()
    with pytest.raises(GenotypeError, match="unknown key"):
        Genotype.from_dict({**data, "width": 2})
    data.pop("threshold")
    with pytest.raises(GenotypeError, match="missing key"):
        Genotype.from_dict(data)
