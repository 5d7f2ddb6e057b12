"""`check_depth`, the nesting bound run on every item: exact at the limit, containers only."""

from __future__ import annotations

from typing import Any

import pytest

from mentor_server.api.errors import ApiError
from mentor_server.api.guards import check_depth


def nest(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(levels):
        value = [value] if i % 2 else {"k": value, "scalar": "s"}
    return value


@pytest.mark.parametrize("levels", [0, 1, 2, 7, 8])
def test_values_at_or_under_the_limit_pass(levels: int) -> None:
    check_depth(nest(levels), 8, "items[0]")


@pytest.mark.parametrize("levels", [9, 10, 500])
def test_one_level_over_the_limit_is_a_422_naming_the_field(levels: int) -> None:
    with pytest.raises(ApiError) as info:
        check_depth(nest(levels), 8, "items[3]")
    assert (info.value.type, info.value.param) == ("too_deep", "items[3]")


def test_the_deepest_branch_decides_not_the_first() -> None:
    value = {"shallow": [1, 2, 3], "wide": [{"a": i} for i in range(1000)], "deep": nest(9)}
    with pytest.raises(ApiError):
        check_depth(value, 9, "x")  # the outer dict and nine levels below it
    check_depth(value, 10, "x")


def test_tuples_and_empty_containers_count_as_levels() -> None:
    with pytest.raises(ApiError):
        check_depth(((([],),),), 3, "x")
    check_depth(((([],),),), 4, "x")
