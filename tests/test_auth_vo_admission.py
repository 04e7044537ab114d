"""The VO rule: which VO a group is in, and who is admitted (table tests)."""

import pytest

from jhub_af.auth import admit_by_vo, vo_of, vos_of


@pytest.mark.parametrize(
    ("group", "vo"),
    [
        ("/atlas", "/atlas"),
        ("/atlas/users", "/atlas"),
        ("/cms/gpu/t4", "/cms"),
        ("/atlas/", "/atlas"),
        ("atlas", None),
        ("/", None),
        ("", None),
        ("staff", None),
    ],
)
def test_vo_of(group, vo):
    assert vo_of(group) == vo


def test_vos_of_is_sorted_and_distinct():
    assert vos_of(["/cms/gpu", "/atlas/users", "/atlas", "staff"]) == ("/atlas", "/cms")


@pytest.mark.parametrize(
    ("id", "groups", "allowed", "admitted", "reason"),
    [
        ("member of allowed VO", ["/atlas", "/atlas/users"], ["/atlas", "/cms"], True, None),
        ("subgroup counts as membership", ["/cms/gpu"], ["/cms"], True, None),
        ("any VO when none configured", ["/lhcb"], [], True, None),
        ("allowed VO written as subgroup", ["/atlas"], ["/atlas/users"], True, None),
        ("one of several VOs allowed", ["/lhcb", "/cms"], ["/cms"], True, None),
        ("no VO at all", [], ["/atlas"], False, "Not a member of any VO"),
        ("only non-VO groups", ["staff"], [], False, "Not a member of any VO"),
        ("VO not allowed", ["/lhcb/users"], ["/atlas", "/cms"], False, "VO not admitted here"),
    ],
)
def test_admit_by_vo(id, groups, allowed, admitted, reason):
    decision = admit_by_vo(groups, allowed)
    assert decision.admitted is admitted
    assert decision.reason == reason
    if admitted:
        assert decision.advice is None
    else:
        # each refusal says what to do next, in its own words
        advice = {
            "Not a member of any VO": "then sign in again.",
            "VO not admitted here": ("ask this facility's admins whether your VO can be added."),
        }[reason]
        assert decision.advice.endswith(advice)


def test_refusal_names_the_allowed_vos_and_the_users_vos():
    decision = admit_by_vo(["/lhcb/users"], ["/atlas", "/cms"])
    assert "/lhcb" in decision.advice
    assert "/atlas, /cms" in decision.advice
