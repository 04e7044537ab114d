"""The kubernetes backend: a profile as KubeSpawner settings.

:func:`kube_settings` is pure: profile + facility rules -> KubeSpawner traits.
KubeSpawner itself does the life cycle (pods, events, image pulls). Settings
that KubeSpawner's own config may already hold (volumes, tolerations, node
selector, extra limits, labels) are returned as dicts keyed ``af-...`` and
*merged* into the configured values by the ProfileSpawner, never replacing them.
"""

from __future__ import annotations

from kubespawner.slugs import safe_slug
from traitlets import Dict, List, Unicode
from traitlets.config import Configurable

from .options import Selection
from .profile import CatalogueError

PROFILE_LABEL = "hub.jupyter.org/af-profile"
GPU_RESOURCE = "nvidia.com/gpu"


class KubeProfiles(Configurable):
    """How this facility's Kubernetes cluster exposes GPUs, spot nodes and CVMFS."""

    gpu_types = Dict(
        default_value={
            "t4": {"node_selector": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}},
            "p100": {"node_selector": {"cloud.google.com/gke-accelerator": "nvidia-tesla-p100"}},
        },
        config=True,
        help="""
        Per GPU type named in profiles (``accelerator: {type: t4}``): the node
        selector and extra tolerations that put the pod on a node with that GPU.
        Every GPU pod also tolerates the ``nvidia.com/gpu`` taint and asks for
        ``nvidia.com/gpu: COUNT`` in its limits. Default: GKE's accelerator labels
        for ``t4`` and ``p100``. Example::

            c.KubeProfiles.gpu_types = {
                "a100": {
                    "node_selector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"},
                    "tolerations": [{"key": "gpu-a100", "operator": "Exists",
                                     "effect": "NoSchedule"}],
                },
            }
        """,
    )

    preemptible_node_selector = Dict(
        default_value={"cloud.google.com/gke-spot": "true"},
        config=True,
        help="""
        Node selector added to profiles with ``kubernetes: {preemptible: true}``,
        which run on cheaper spot/preemptible nodes that may be reclaimed.
        Default: GKE spot nodes, ``{"cloud.google.com/gke-spot": "true"}``.
        """,
    )

    preemptible_tolerations = List(
        default_value=[
            {
                "key": "cloud.google.com/gke-spot",
                "operator": "Equal",
                "value": "true",
                "effect": "NoSchedule",
            }
        ],
        config=True,
        help="""
        Tolerations added to preemptible profiles so that their pods may run on
        tainted spot nodes. Default: GKE's ``cloud.google.com/gke-spot=true:NoSchedule``.
        """,
    )

    cvmfs_source = Unicode(
        "pvc",
        config=True,
        help="""
        Where the CVMFS repositories come from:

        - ``"pvc"`` (default): the cvmfs CSI driver's volume, through the
          ReadOnlyMany claim named in ``cvmfs_claim_name`` (made by the admin from
          the driver's automounting storage class); each repository is mounted
          with ``subPath``;
        - ``"hostpath"``: ``/cvmfs/<repository>`` on the node, for clusters whose
          nodes mount CVMFS themselves.

        Either way the mount is read-only, at ``/cvmfs/<repository>``.
        """,
    )

    cvmfs_claim_name = Unicode(
        "cvmfs",
        config=True,
        help="With cvmfs_source = 'pvc': the claim bound to the cvmfs CSI driver (default cvmfs).",
    )


def _volume_name(repository: str) -> str:
    # Kubernetes volume names are DNS labels: no dots; kubespawner's rule hashes the rest
    return safe_slug(f"cvmfs-{repository.replace('.', '-')}", max_length=63)


def _cvmfs(selection: Selection, rules: KubeProfiles) -> tuple[dict, dict]:
    volumes, mounts = {}, {}
    for repo in selection.profile.cvmfs:
        mount = {"mountPath": f"/cvmfs/{repo}", "readOnly": True}
        mount["mountPropagation"] = "HostToContainer"
        if rules.cvmfs_source == "hostpath":
            name = _volume_name(repo)
            volumes[f"af-{name}"] = {
                "name": name,
                "hostPath": {"path": f"/cvmfs/{repo}", "type": "Directory"},
            }
        else:
            name = "cvmfs"
            volumes["af-cvmfs"] = {
                "name": name,
                "persistentVolumeClaim": {"claimName": rules.cvmfs_claim_name, "readOnly": True},
            }
            mount["subPath"] = repo
        mounts[f"af-{_volume_name(repo)}"] = {"name": name, **mount}
    return volumes, mounts


def kube_settings(selection: Selection, rules: KubeProfiles) -> dict:
    """Profile -> KubeSpawner traits (image, limits, guarantees, GPUs, CVMFS, spot nodes)."""
    if rules.cvmfs_source not in ("pvc", "hostpath"):
        raise CatalogueError(
            f"KubeProfiles.cvmfs_source must be 'pvc' or 'hostpath', not {rules.cvmfs_source!r}"
        )
    profile = selection.profile
    node_selector: dict = {}
    tolerations: dict = {}
    limits: dict = {}
    if profile.gpu_type:
        rule = rules.gpu_types.get(profile.gpu_type)
        if rule is None:
            raise CatalogueError(
                f"profile {profile.slug!r}: GPU type {profile.gpu_type!r} has no entry in "
                "KubeProfiles.gpu_types"
            )
        node_selector.update(rule.get("node_selector", {}))
        tolerations["af-gpu"] = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
        for i, toleration in enumerate(rule.get("tolerations", [])):
            tolerations[f"af-gpu-{i}"] = toleration
        limits[GPU_RESOURCE] = str(profile.gpu_count)
    if profile.preemptible:
        node_selector.update(rules.preemptible_node_selector)
        for i, toleration in enumerate(rules.preemptible_tolerations):
            tolerations[f"af-preemptible-{i}"] = toleration
    volumes, mounts = _cvmfs(selection, rules)
    return {
        "image": selection.image,
        "cpu_limit": float(selection.cores),
        "cpu_guarantee": float(profile.cores_guarantee or selection.cores),
        "mem_limit": selection.memory,
        "mem_guarantee": profile.memory_guarantee or selection.memory,
        "extra_resource_limits": limits,
        "node_selector": node_selector,
        "tolerations": tolerations,
        "volumes": volumes,
        "volume_mounts": mounts,
        "extra_labels": {PROFILE_LABEL: profile.slug},
    }
