"""user_options -> Selection: every refusal with its exact text, and what is kept."""

from __future__ import annotations

import pytest

from jhub_af.demo import DEMO_PROFILES, SLURM_EXAMPLE
from jhub_af.hub import spawn_body, unwrap_spawn_body
from jhub_af.spawner import ProfileRefused, parse_catalogue, select
from jhub_af.spawner.options import options_from_form

CATALOGUE = parse_catalogue([*DEMO_PROFILES, SLURM_EXAMPLE])
ALICE = (["/atlas", "/atlas/users"], False)
BOB = (["/cms", "/cms/gpu"], False)
ADMIN = (["/atlas"], True)

GOOD = [
    ("no options: default", {}, ALICE, {"profile": "default"}, (1, "2G")),
    ("None: default", None, BOB, {"profile": "default"}, (1, "2G")),
    ("large", {"profile": "large"}, ALICE, {"profile": "large"}, (4, "8G")),
    (
        "cvmfs choices default",
        {"profile": "cvmfs"},
        ADMIN,
        {"profile": "cvmfs", "image_tag": "2025-10-20", "size": "medium"},
        (2, "8G"),
    ),
    (
        "cvmfs large size, older tag",
        {"profile": "cvmfs", "size": "large", "image_tag": "2025-06-02"},
        ADMIN,
        {"profile": "cvmfs", "image_tag": "2025-06-02", "size": "large"},
        (8, "32G"),
    ),
    (
        "hpc walltime",
        {"profile": "hpc", "walltime": 12, "partition": "gpu"},
        ALICE,
        {"profile": "hpc", "partition": "gpu", "walltime": 12},
        (4, "16G"),
    ),
    (
        "JupyterHub 6 body sent to a 5 hub",
        {"user_options": {"profile": "large"}},
        ALICE,
        {"profile": "large"},
        (4, "8G"),
    ),
]


@pytest.mark.parametrize(
    ("options", "who", "kept", "resources"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD]
)
def test_valid_options_select_the_catalogues_values(options, who, kept, resources):
    selection = select(options, CATALOGUE, *who)
    assert selection.user_options() == kept
    assert (selection.cores, selection.memory) == resources


def test_image_tag_choice_replaces_the_tag():
    selection = select({"profile": "cvmfs", "image_tag": "2025-06-02"}, CATALOGUE, *ADMIN)
    assert selection.image == "quay.io/jupyter/scipy-notebook:2025-06-02"


YOURS = "Profiles you can use: default, large, hpc."
REFUSED = [
    (
        "unknown profile",
        {"profile": "huge"},
        ALICE,
        f"There is no profile 'huge' (your admins may have removed it). {YOURS}",
    ),
    (
        "another group's profile",
        {"profile": "large"},
        BOB,
        "The profile 'large' is for members of /atlas/users; ask your VO admin. "
        "Profiles you can use: default.",
    ),
    (
        "admins' profile",
        {"profile": "t4"},
        ALICE,
        f"The profile 't4' is for hub admins; ask your VO admin. {YOURS}",
    ),
    (
        "extra key",
        {"profile": "large", "cmd": ["/bin/sh"]},
        ALICE,
        "Unknown option(s) 'cmd' for profile 'large'; the options it takes are: profile.",
    ),
    (
        "extra key on default",
        {"image": "evil:latest"},
        ALICE,
        "Unknown option(s) 'image' for profile 'default'; the options it takes are: profile.",
    ),
    (
        "profile not a string",
        {"profile": ["large"]},
        ALICE,
        f"The option 'profile' must be the short name of a profile. {YOURS}",
    ),
    (
        "HTML in the profile name",
        {"profile": "<script>alert(1)</script>"},
        ALICE,
        f"The option 'profile' must be the short name of a profile. {YOURS}",
    ),
    (
        "huge walltime",
        {"profile": "hpc", "walltime": 10**100},
        ALICE,
        "Option 'walltime' of profile 'hpc' must be from 1 to 12 hours.",
    ),
    (
        "walltime as text",
        {"profile": "hpc", "walltime": "4"},
        ALICE,
        "Option 'walltime' of profile 'hpc' must be a whole number of hours from 1 to 12.",
    ),
    (
        "walltime float",
        {"profile": "hpc", "walltime": 2.5},
        ALICE,
        "Option 'walltime' of profile 'hpc' must be a whole number of hours from 1 to 12.",
    ),
    (
        "partition with a newline",
        {"profile": "hpc", "partition": "batch\n#SBATCH --uid=0"},
        ALICE,
        "Option 'partition' of profile 'hpc' must be one of: batch, gpu.",
    ),
    (
        "partition with shell",
        {"profile": "hpc", "partition": "batch$(reboot)"},
        ALICE,
        "Option 'partition' of profile 'hpc' must be one of: batch, gpu.",
    ),
    (
        "size as a number",
        {"profile": "cvmfs", "size": 64},
        ADMIN,
        "Option 'size' of profile 'cvmfs' must be one of: medium, large.",
    ),
    (
        "image tag with HTML",
        {"profile": "cvmfs", "image_tag": "<b>latest</b>"},
        ADMIN,
        "Option 'image_tag' of profile 'cvmfs' must be one of: 2025-10-20, 2025-06-02.",
    ),
    (
        "HTML in an option name",
        {"profile": "large", "<img src=x onerror=alert(1)>": 1},
        ALICE,
        "Unknown option(s) (an option with an unusual name) for profile 'large'; "
        "the options it takes are: profile.",
    ),
    (
        "too many keys",
        {f"k{i}": i for i in range(100)},
        ALICE,
        "Too many server options; a profile has at most 16.",
    ),
    (
        "not an object",
        ["profile", "large"],
        ALICE,
        'Server options must be a JSON object such as {"profile": "default"}.',
    ),
]


@pytest.mark.parametrize(
    ("options", "who", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_bad_options_are_refused_saying_what_is_allowed(options, who, message):
    with pytest.raises(ProfileRefused) as e:
        select(options, CATALOGUE, *who)
    assert str(e.value) == message


def test_a_user_with_no_profile_at_all_is_told_whom_to_ask():
    only_atlas = parse_catalogue([DEMO_PROFILES[1]])
    with pytest.raises(ProfileRefused) as e:
        select({}, only_atlas, ["/cms"], False)
    assert str(e.value) == (
        "No profile is open to your groups, so no server can start. "
        "Ask your VO admin which group gives access to this facility's profiles."
    )


def test_the_selection_holds_the_catalogues_strings_not_the_users():
    sent = "gpu"
    selection = select({"profile": "hpc", "partition": sent}, CATALOGUE, *ALICE)
    assert selection.partition == "gpu"
    assert selection.partition is CATALOGUE[5].choices["partition"].options[1]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, {}),
        ({}, {}),
        ({"profile": "large"}, {"profile": "large"}),
        ({"user_options": {"profile": "large"}}, {"profile": "large"}),
        ({"user_options": {"profile": "large"}, "display_name": "x"}, {"profile": "large"}),
        ({"user_options": None}, {}),
    ],
)
def test_unwrap_spawn_body_handles_both_hub_versions(body, expected):
    assert unwrap_spawn_body(body) == expected


@pytest.mark.parametrize(
    ("version", "body"),
    [
        ("6.1.1", {"user_options": {"profile": "large"}}),
        ("5.3.0", {"profile": "large"}),
    ],
)
def test_spawn_body_for_each_hub_version(version, body):
    assert spawn_body({"profile": "large"}, version) == body


FORMS = [
    ("nothing chosen", {}, {}),
    ("profile only", {"profile": ["large"]}, {"profile": "large"}),
    (
        "only the chosen profile's fields",
        {
            "profile": ["hpc"],
            "hpc--walltime": ["6"],
            "hpc--partition": ["gpu"],
            "cvmfs--size": ["large"],
        },
        {"profile": "hpc", "walltime": 6, "partition": "gpu"},
    ),
    (
        "a non-ASCII digit stays text (and is refused later)",
        {"profile": ["hpc"], "hpc--walltime": ["²"]},
        {"profile": "hpc", "walltime": "²"},
    ),
    (
        "walltime that is not a number stays text (and is refused later)",
        {"profile": ["hpc"], "hpc--walltime": ["6; id"]},
        {"profile": "hpc", "walltime": "6; id"},
    ),
]


@pytest.mark.parametrize(("form", "expected"), [f[1:] for f in FORMS], ids=[f[0] for f in FORMS])
def test_options_from_form(form, expected):
    assert options_from_form(form) == expected
