"""Claims to VO groups: every claim form IAM, WLCG and EGI use, and hostile values."""

import pytest

from jhub_af.auth import groups_from_claims, normalize_group
from jhub_af.auth.claims import DEFAULT_ENTITLEMENT_PATTERNS as PATTERNS
from jhub_af.auth.claims import MAX_GROUPS, entitlement_pattern, group_from_entitlement


@pytest.mark.parametrize(
    ("value", "group"),
    [
        ("/atlas/users", "/atlas/users"),
        ("atlas/users", "/atlas/users"),
        ("/atlas/users/", "/atlas/users"),
        ("//cms//gpu", "/cms/gpu"),
        (" /cms ", "/cms"),
        ("/atlas/phys-higgs_2.x", "/atlas/phys-higgs_2.x"),
        ("", None),
        ("/", None),
        ("/atlas/<script>", None),
        ("/atlas users", None),
        ("/atlas/../cms", None),
        ("/atlas/.hidden", None),
        ("/atlas\n/cms", None),
        ("/" + "a" * 300, None),
        (42, None),
        (None, None),
        (["/atlas"], None),
    ],
)
def test_normalize_group(value, group):
    assert normalize_group(value) == group


@pytest.mark.parametrize(
    ("urn", "group"),
    [
        ("urn:mace:egi.eu:group:atlas:users:role=member#aai.egi.eu", "/atlas/users"),
        ("urn:mace:egi.eu:group:cms:role=vm_operator#aai.egi.eu", "/cms"),
        ("urn:mace:egi.eu:group:cms#aai.egi.eu", "/cms"),
        ("urn:mace:egi.eu:group:atlas:users", "/atlas/users"),
        ("urn:geant:cern.ch:group:atlas:higgs#cern.ch", "/atlas/higgs"),
        # issue 15 item 8: another authority's entitlements are not groups
        ("urn:geant:evil.example:group:atlas#evil.example", None),
        ("urn:geant:cern.ch.evil.example:group:atlas", None),
        ("urn:mace:egi.eu.evil.example:group:atlas", None),
        ("urn:mace:egi.eu:x:group:atlas", None),
        ("urn:mace:dir:entitlement:common-lib-terms", None),
        ("urn:mace:egi.eu:group:<b>:role=member", None),
        (7, None),
    ],
)
def test_group_from_entitlement(urn, group):
    assert group_from_entitlement(urn, PATTERNS) == group


@pytest.mark.parametrize(
    ("namespace", "urn", "group"),
    [
        ("urn:geant:example.org", "urn:geant:example.org:group:cms:gpu#example.org", "/cms/gpu"),
        ("urn:geant:example.org", "urn:geant:other.org:group:cms", None),
        (
            "urn:mace:egi.eu#aai.egi.eu",
            "urn:mace:egi.eu:group:atlas:role=member#aai.egi.eu",
            "/atlas",
        ),
        ("urn:mace:egi.eu#aai.egi.eu", "urn:mace:egi.eu:group:atlas#other.example", None),
        ("urn:mace:egi.eu#aai.egi.eu", "urn:mace:egi.eu:group:atlas", None),
        ("urn:mace:egi.eu", "urn:mace:egi.eu:group:atlas#any.example", "/atlas"),
    ],
)
def test_entitlement_namespace_is_pinned(namespace, urn, group):
    assert group_from_entitlement(urn, [entitlement_pattern(namespace)]) == group


@pytest.mark.parametrize(
    "namespace", ["urn:geant:*", "urn:geant:[^:]+", "urn:x:group:atlas", "", "egi.eu", "urn:x#"]
)
def test_entitlement_namespace_must_be_a_plain_urn(namespace):
    with pytest.raises(ValueError, match=r"URN namespace|host name"):
        entitlement_pattern(namespace)


@pytest.mark.parametrize(
    ("id", "claims", "groups", "present"),
    [
        (
            "INDIGO IAM wlcg.groups",
            {"wlcg.groups": ["/atlas", "/atlas/users"]},
            ("/atlas", "/atlas/users"),
            ("wlcg.groups",),
        ),
        (
            "IAM groups without slash",
            {"groups": ["cms", "cms/gpu"]},
            ("/cms", "/cms/gpu"),
            ("groups",),
        ),
        (
            "all three joined",
            {
                "wlcg.groups": ["/atlas"],
                "groups": ["atlas/users"],
                "eduperson_entitlement": ["urn:mace:egi.eu:group:cms:role=member#aai.egi.eu"],
            },
            ("/atlas", "/atlas/users", "/cms"),
            ("wlcg.groups", "groups", "eduperson_entitlement"),
        ),
        ("space separated string", {"groups": "atlas cms"}, ("/atlas", "/cms"), ("groups",)),
        ("empty list is present", {"wlcg.groups": []}, (), ("wlcg.groups",)),
        ("no group claim", {"sub": "x", "email": "a@b"}, (), ()),
        ("nested wlcg is not the claim", {"wlcg": {"groups": ["/atlas"]}}, (), ()),
        ("wrong type", {"wlcg.groups": {"/atlas": True}}, (), ("wlcg.groups",)),
        (
            "hostile values dropped",
            {"groups": ["atlas", "<img src=x>", 5]},
            ("/atlas",),
            ("groups",),
        ),
    ],
)
def test_groups_from_claims(id, claims, groups, present):
    claimed = groups_from_claims(claims)
    assert claimed.groups == groups
    assert claimed.claims_present == present


def test_claim_list_is_configurable():
    claims = {"wlcg.groups": ["/atlas"], "roles": ["/cms"]}
    assert groups_from_claims(claims, ["roles"]).groups == ("/cms",)


def test_number_of_groups_is_bounded():
    claims = {"groups": [f"vo{i}" for i in range(5 * MAX_GROUPS)]}
    assert len(groups_from_claims(claims).groups) == MAX_GROUPS


def test_dropped_values_are_counted():
    assert groups_from_claims({"groups": ["atlas", "x y", None]}).dropped == 2
