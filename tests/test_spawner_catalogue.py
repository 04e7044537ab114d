"""The profile catalogue: what parses, what is refused (with the field named), who sees what."""

from __future__ import annotations

import pytest
from traitlets import TraitError

from jhub_af.demo import DEMO_PROFILES, SLURM_EXAMPLE
from jhub_af.spawner import CatalogueError, ProfileSpawner, parse_catalogue, visible_profiles


def test_demo_and_example_catalogues_parse():
    profiles = parse_catalogue([*DEMO_PROFILES, SLURM_EXAMPLE])
    assert [p.slug for p in profiles] == ["default", "large", "cvmfs", "t4", "p100", "hpc"]
    t4 = profiles[3]
    assert (t4.backend, t4.gpu_type, t4.gpu_count, t4.preemptible) == ("kubernetes", "t4", 1, True)
    assert profiles[2].cvmfs == ("atlas.cern.ch", "atlas-condb.cern.ch", "sft.cern.ch")
    hpc = profiles[5]
    assert (hpc.partition, hpc.account, hpc.qos, hpc.walltime_hours) == (
        "batch",
        "atlas",
        "interactive",
        4,
    )


def _with(**fields):
    return {"slug": "p", "display_name": "P", "backend": "local", **fields}


BAD = [
    ("not a list", {"slug": "p"}, "the catalogue must be a list of profiles"),
    ("bad slug", [{"slug": "Bad Slug"}], "profile slug 'Bad Slug' is not allowed"),
    ("unknown field", [_with(colour="red")], "profile 'p': unknown field(s) colour"),
    ("backend", [_with(backend="docker")], "backend 'docker' is not one of local, kubernetes"),
    ("cores", [_with(resources={"cores": 0})], "cores must be a whole number from 1 to 512"),
    ("cores type", [_with(resources={"cores": "4"})], "cores must be a whole number"),
    ("memory", [_with(resources={"memory": "lots"})], "memory 'lots' is not allowed"),
    ("memory shell", [_with(resources={"memory": "4G;id"})], "memory '4G;id' is not allowed"),
    (
        "image metachar",
        [_with(backend="kubernetes", image="img:1 && rm -rf /")],
        "image 'img:1 && rm -rf /' is not allowed",
    ),
    ("kube without image", [_with(backend="kubernetes")], "a kubernetes profile needs an image"),
    (
        "partition newline",
        [_with(backend="slurm", slurm={"partition": "debug\n#SBATCH --uid=0"})],
        "slurm.partition 'debug\\n#SBATCH --uid=0' is not allowed",
    ),
    ("group", [_with(groups=["atlas users"])], "group 'atlas users' is not allowed"),
    ("gpu count", [_with(accelerator={"type": "t4", "count": 99})], "accelerator count must be"),
    ("choice name", [_with(choices={"colour": {}})], "unknown choice 'colour'"),
    (
        "walltime for local",
        [_with(choices={"walltime": {"min": 1, "max": 2}})],
        "the walltime choice is for slurm profiles only",
    ),
    (
        "choice default",
        [_with(image="i:1", choices={"image_tag": {"options": ["1"], "default": "2"}})],
        "image_tag default '2' is not one of 1",
    ),
    ("duplicate", [_with(), _with()], "profile 'p' appears twice; slugs must be unique"),
    ("guarantee", [_with(resources={"cores": 2, "cores_guarantee": 3})], "cores_guarantee"),
]


@pytest.mark.parametrize(("entries", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_catalogues_are_refused_naming_the_field(entries, message):
    with pytest.raises(CatalogueError) as e:
        parse_catalogue(entries)
    assert message in str(e.value)


def test_profile_spawner_refuses_a_bad_catalogue_when_the_config_loads():
    with pytest.raises(TraitError, match=r"ProfileSpawner.profiles: profile 'p': unknown field"):
        ProfileSpawner(profiles=[_with(colour="red")])


VISIBILITY = [
    ("alice", ["/atlas", "/atlas/users"], False, ["default", "large"]),
    ("bob", ["/cms", "/cms/gpu"], False, ["default"]),
    ("no groups", [], False, ["default"]),
    ("admin", ["/atlas"], True, ["default", "cvmfs", "t4", "p100"]),
    ("admin in /atlas/users", ["/atlas/users"], True, ["default", "large", "cvmfs", "t4", "p100"]),
]


@pytest.mark.parametrize(
    ("groups", "admin", "expected"), [v[1:] for v in VISIBILITY], ids=[v[0] for v in VISIBILITY]
)
def test_who_sees_which_demo_profile(groups, admin, expected):
    profiles = parse_catalogue(DEMO_PROFILES)
    assert [p.slug for p in visible_profiles(profiles, groups, admin)] == expected
