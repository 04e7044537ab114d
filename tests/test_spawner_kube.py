"""The kubernetes backend without a cluster: KubeSpawner's own pod manifest for every
demo profile, validated with kubernetes-validate (strict) on Kubernetes 1.30 and the newest."""

from __future__ import annotations

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient
from kubespawner import KubeSpawner
from traitlets.config import Config

from jhub_af.demo import DEMO_PROFILES
from jhub_af.spawner import parse_catalogue, select
from jhub_af.spawner.kube import KubeProfiles, kube_settings
from jhub_af.spawner.spawner import apply_settings

KUBE_PROFILES = [p for p in parse_catalogue(DEMO_PROFILES) if p.backend == "kubernetes"]
VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
# KubeSpawner loads a kube config at construction; none is contacted
pytestmark = pytest.mark.usefixtures("dummy_kubeconfig")


def _facility_config(cvmfs_source: str) -> Config:
    c = Config()
    # what a z2jh deployment already configures: the home volume and a toleration
    c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "home"}}]
    c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
    c.KubeSpawner.tolerations = [
        {
            "key": "hub.jupyter.org/dedicated",
            "operator": "Equal",
            "value": "user",
            "effect": "NoSchedule",
        }
    ]
    c.KubeProfiles.cvmfs_source = cvmfs_source
    return c


async def _manifest(profile, options: dict, cvmfs_source: str = "pvc") -> dict:
    config = _facility_config(cvmfs_source)
    selection = select({"profile": profile.slug, **options}, KUBE_PROFILES, [], admin=True)
    spawner = KubeSpawner(_mock=True, config=config)
    apply_settings(spawner, kube_settings(selection, KubeProfiles(config=config)))
    pod = await spawner.get_pod_manifest()
    async with ApiClient() as api:
        return api.sanitize_for_serialization(pod)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("cvmfs_source", ["pvc", "hostpath"])
@pytest.mark.parametrize("profile", KUBE_PROFILES, ids=lambda p: p.slug)
async def test_pod_manifest_of_every_demo_profile_is_valid(profile, cvmfs_source, version):
    manifest = await _manifest(profile, {}, cvmfs_source)
    manifest.setdefault("apiVersion", "v1")
    manifest.setdefault("kind", "Pod")
    kubernetes_validate.validate(manifest, version, strict=True)


async def test_t4_pod_asks_for_a_gpu_on_a_t4_spot_node_and_keeps_the_facility_settings():
    [t4] = [p for p in KUBE_PROFILES if p.slug == "t4"]
    pod = await _manifest(t4, {})
    container = pod["spec"]["containers"][0]
    assert container["image"] == "nvcr.io/nvidia/rapidsai/notebooks:25.08-cuda12.9-py3.12"
    assert container["resources"]["limits"] == {
        "cpu": 4.0,
        "memory": 16 * 2**30,
        "nvidia.com/gpu": "1",
    }
    assert container["resources"]["requests"] == {"cpu": 4.0, "memory": 16 * 2**30}
    assert pod["spec"]["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-tesla-t4",
        "cloud.google.com/gke-spot": "true",
    }
    keys = [t["key"] for t in pod["spec"]["tolerations"]]
    assert keys[:3] == ["hub.jupyter.org/dedicated", "nvidia.com/gpu", "cloud.google.com/gke-spot"]
    assert pod["metadata"]["labels"]["hub.jupyter.org/af-profile"] == "t4"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/home/jovyan"]["name"] == "home"
    assert mounts["/cvmfs/sft.cern.ch"] == {
        "mountPath": "/cvmfs/sft.cern.ch",
        "mountPropagation": "HostToContainer",
        "name": "cvmfs",
        "readOnly": True,
        "subPath": "sft.cern.ch",
    }


async def test_cvmfs_profile_mounts_each_repository_read_only():
    [cvmfs] = [p for p in KUBE_PROFILES if p.slug == "cvmfs"]
    pod = await _manifest(cvmfs, {"size": "large", "image_tag": "2025-06-02"}, "hostpath")
    container = pod["spec"]["containers"][0]
    assert container["image"] == "quay.io/jupyter/scipy-notebook:2025-06-02"
    assert container["resources"]["limits"]["cpu"] == 8.0
    assert container["resources"]["requests"]["cpu"] == 0.5
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["cvmfs-atlas-cern-ch"]["hostPath"] == {
        "path": "/cvmfs/atlas.cern.ch",
        "type": "Directory",
    }
    cvmfs_mounts = [m for m in container["volumeMounts"] if m["mountPath"].startswith("/cvmfs/")]
    assert sorted(m["mountPath"] for m in cvmfs_mounts) == [
        "/cvmfs/atlas-condb.cern.ch",
        "/cvmfs/atlas.cern.ch",
        "/cvmfs/sft.cern.ch",
    ]
    assert all(m["readOnly"] for m in cvmfs_mounts)
    assert pod["spec"].get("nodeSelector") in (None, {})  # absent and empty both select any node


async def test_progress_tells_a_gpu_user_what_the_start_waits_for():
    from jhub_af.spawner import ProfileSpawner

    [t4] = [p for p in KUBE_PROFILES if p.slug == "t4"]
    spawner = ProfileSpawner(profiles=DEMO_PROFILES)
    spawner.selection = select({"profile": "t4"}, KUBE_PROFILES, [], admin=True)
    # KubeSpawner's own events need a cluster; without them it adds nothing
    spawner.backend_spawner = KubeSpawner(_mock=True, events_enabled=False)
    messages = [event["message"] async for event in spawner.progress()]
    assert messages == [
        f"Waiting for a T4 GPU node ({t4.start_note})",
        f"Pulling image {t4.image} if the node does not have it yet",
    ]
