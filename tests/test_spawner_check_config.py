"""`jhub-af check-config`: profiles per group, and the problems it flags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jhub_af.spawner.check import check_catalogue

JHUB_AF = str(Path(sys.executable).parent / "jhub-af")


def test_demo_configuration_by_group(tmp_path):
    r = subprocess.run(
        [JHUB_AF, "check-config"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert list(tmp_path.iterdir()) == []  # a check writes nothing where it runs
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "Profiles in the demo's configuration, by the group a user is in:",
        "  /atlas        default",
        "  /atlas/users  default, large",
        "  /cms          default",
        "  /cms/gpu      default",
        "  users in none of these groups: default",
        "  hub admins also see: cvmfs, t4, p100",
        "No problems found.",
    ]


BROKEN_CONFIG = """
c = get_config()  # noqa
c.JupyterHub.load_groups = {"/atlas": [], "/cms/gpu": []}
c.ProfileSpawner.profiles = [
    {"slug": "default", "backend": "local"},
    {"slug": "gpu", "backend": "kubernetes", "image": "rapids:1",
     "accelerator": {"type": "a100"}, "groups": ["/cms/gpu"]},
    {"slug": "lhcb", "backend": "local", "groups": ["/lhcb/users"]},
    {"slug": "big", "backend": "local", "resources": {"cores": 4096}},
]
"""


def test_a_broken_configuration_is_flagged_and_exits_1(tmp_path):
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(BROKEN_CONFIG)
    r = subprocess.run(
        [JHUB_AF, "check-config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1
    out = r.stdout
    assert "  /atlas    default\n" in out
    assert "  /cms/gpu  default, gpu\n" in out
    assert "Problems:\n" in out
    for problem in [
        "profile 'big': cores must be a whole number from 1 to 512, not 4096",
        "profile 'gpu': GPU type 'a100' has no entry in KubeProfiles.gpu_types (known: t4, p100)",
        "profile 'lhcb': unknown group(s) /lhcb/users",
        "profile 'lhcb': no group of this facility can see it",
    ]:
        assert f"  - {problem}" in out


def test_a_missing_file_is_reported():
    r = subprocess.run(
        [JHUB_AF, "check-config", "/nonexistent/jupyterhub_config.py"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "is not a file; give a jupyterhub_config.py" in r.stderr


CASES = [
    ("empty catalogue", [], ["/atlas"], "ProfileSpawner.profiles is empty"),
    (
        "duplicate",
        [{"slug": "a"}, {"slug": "a"}],
        [],
        "profile 'a' appears twice; slugs must be unique",
    ),
    (
        "guarantee above limit",
        [{"slug": "a", "resources": {"memory": "2G", "memory_guarantee": "4G"}}],
        [],
        "profile 'a': memory_guarantee 4G is above memory 2G",
    ),
    (
        "image on slurm",
        [{"slug": "a", "backend": "slurm", "image": "x:1"}],
        [],
        "profile 'a': a slurm profile runs no image; drop 'image'",
    ),
]


@pytest.mark.parametrize(
    ("entries", "groups", "problem"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_check_catalogue_problems(entries, groups, problem):
    report = check_catalogue(entries, groups)
    assert any(problem in p for p in report.problems), report.problems


def test_admins_only_profiles_are_not_flagged_as_unseen():
    report = check_catalogue(
        [{"slug": "a"}, {"slug": "b", "admins_only": True, "groups": ["/nowhere"]}], ["/atlas"]
    )
    assert report.problems == []
    assert report.admins_also == ["b"]
