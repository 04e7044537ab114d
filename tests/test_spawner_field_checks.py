"""The catalogue's field checks (jhub_af.spawner.field_checks): each returns the value
it checked or raises CatalogueError with a sentence naming the profile and the field."""

from __future__ import annotations

import pytest

from jhub_af.spawner import CatalogueError
from jhub_af.spawner.field_checks import (
    MEMORY,
    NAME,
    TOKEN,
    checked_text,
    cores_and_memory,
    mapping_field,
    matching,
    whole_number,
)


@pytest.mark.parametrize(
    "value, pattern, accepted",
    [
        ("gpu", NAME, True),
        ("gpu; rm -rf /", NAME, False),
        ("a\nb", NAME, False),
        ("ghcr.io/org/image:2026.1", TOKEN, True),
        ("image $(id)", TOKEN, False),
        ("8G", MEMORY, True),
        ("0G", MEMORY, False),
        (8, MEMORY, False),
    ],
)
def test_matching_accepts_only_the_pattern(value, pattern, accepted):
    if accepted:
        assert matching(value, pattern, "p", "field", "example") == value
    else:
        with pytest.raises(CatalogueError, match=r"^profile 'p': field .* is not allowed"):
            matching(value, pattern, "p", "field", "example")


@pytest.mark.parametrize("value", [0, 9, True, 2.0, "2"])
def test_whole_number_refuses_what_is_not_a_whole_number_in_range(value):
    with pytest.raises(CatalogueError) as refused:
        whole_number(value, "p", "cores", 1, 8)
    assert str(refused.value) == (
        f"profile 'p': cores must be a whole number from 1 to 8, not {value!r}"
    )


def test_whole_number_returns_a_number_in_range():
    assert whole_number(8, "p", "cores", 1, 8) == 8


def test_checked_text_default_and_limit():
    assert checked_text({}, "description", "p", "none") == "none"
    with pytest.raises(CatalogueError, match="description is longer than 3 characters"):
        checked_text({"description": "long"}, "description", "p", limit=3)
    with pytest.raises(CatalogueError, match="description must be text"):
        checked_text({"description": 1}, "description", "p")


def test_mapping_field_empty_is_an_empty_mapping_and_a_list_is_refused():
    assert mapping_field({"choices": None}, "choices", "p", "bad") == {}
    with pytest.raises(CatalogueError, match=r"^profile 'p': bad$"):
        mapping_field({"choices": [1]}, "choices", "p", "bad")


def test_cores_and_memory_defaults():
    assert cores_and_memory({}, "p") == (1, "2G")
    assert cores_and_memory({"cores": 4, "memory": "16G"}, "p") == (4, "16G")
