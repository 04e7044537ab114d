"""What helm and the two charts do with jhub_af's values, without helm or a cluster.

- :func:`merged_values`: the chart's defaults, then each ``-f`` file, merged as helm
  merges values (maps key by key, lists and scalars replaced, ``null`` removes a key);
  helm validates exactly this against the chart's ``values.schema.json``.
- :func:`hub_config`: the hub's traitlets ``Config`` built from those values as z2jh's
  ``jupyterhub_config.py`` builds it: the chart's own settings for the keys jhub_af's
  values use (database, KubeSpawner from ``singleuser``, scheduling, services with their
  generated tokens, roles), then ``hub.config`` (``c[Class].update(...)``), then every
  ``hub.extraConfig`` snippet run with ``exec`` in key order, with ``c`` in scope. It
  is a re-statement of the chart's documented mapping, not the chart's file (which
  needs the pod's mounted secrets and environment).
- :func:`gateway_config`: the same for the dask-gateway chart's
  ``dask_gateway_config.py`` (JupyterHub auth, KubeBackend, the cluster resources,
  then ``gateway.extraConfig``).

No Kubernetes API server can run here: these build what the charts would hand to
JupyterHub and dask-gateway-server, and the tests load it with the real classes.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path

import yaml
from traitlets.config import Config

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "helm-values"
CHARTS = ROOT / "tests" / "data" / "chart-schemas"
SITES = sorted(p.name for p in (VALUES / "sites").iterdir() if p.is_dir())
RELEASE = "af"


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def helm_merge(base: dict, overlay: dict) -> dict:
    """``overlay`` on ``base`` as helm merges values files."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = helm_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def value_files(chart: str, site: str | None) -> list[Path]:
    files = [VALUES / f"{chart}.yaml"]
    if site:
        files.append(VALUES / "sites" / site / f"{chart}.yaml")
    return files


def merged_values(chart: str, site: str | None = None) -> dict:
    values = load_yaml(CHARTS / chart / "values.yaml")
    for path in value_files(chart, site):
        values = helm_merge(values, load_yaml(path))
    return values


def get(values: dict, dotted: str, default=None):
    node = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or node.get(part) is None:
            return default
        node = node[part]
    return copy.deepcopy(node)


def generated_token(name: str) -> str:
    """Stands in for the random token the chart generates and keeps in its secret."""
    return hashlib.sha256(f"{RELEASE}/{name}".encode()).hexdigest()


def _camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def _set_if(section, trait: str, values: dict, key: str) -> None:
    value = get(values, key)
    if value is not None:
        section[trait] = value


SINGLEUSER_TRAITS = (
    ("start_timeout", None),
    ("image_pull_policy", "image.pullPolicy"),
    ("events_enabled", "events"),
    ("extra_labels", None),
    ("extra_annotations", None),
    ("uid", None),
    ("fs_gid", None),
    ("service_account", "serviceAccountName"),
    ("storage_extra_labels", "storage.extraLabels"),
    ("node_selector", None),
    ("node_affinity_required", "extraNodeAffinity.required"),
    ("node_affinity_preferred", "extraNodeAffinity.preferred"),
    ("pod_affinity_required", "extraPodAffinity.required"),
    ("pod_affinity_preferred", "extraPodAffinity.preferred"),
    ("pod_anti_affinity_required", "extraPodAntiAffinity.required"),
    ("pod_anti_affinity_preferred", "extraPodAntiAffinity.preferred"),
    ("lifecycle_hooks", None),
    ("init_containers", None),
    ("extra_containers", None),
    ("mem_limit", "memory.limit"),
    ("mem_guarantee", "memory.guarantee"),
    ("cpu_limit", "cpu.limit"),
    ("cpu_guarantee", "cpu.guarantee"),
    ("extra_resource_limits", "extraResource.limits"),
    ("extra_resource_guarantees", "extraResource.guarantees"),
    ("environment", "extraEnv"),
    ("profile_list", None),
    ("extra_pod_config", None),
)


def _kubespawner(c: Config, values: dict) -> None:
    k = c.KubeSpawner
    k.common_labels = {"app": "jupyterhub", "heritage": "jupyterhub", "release": RELEASE}
    k.namespace = "af"
    for trait, key in SINGLEUSER_TRAITS:
        _set_if(k, trait, values, "singleuser." + (key or _camel(trait)))
    image = get(values, "singleuser.image.name")
    if image:
        tag = get(values, "singleuser.image.tag")
        k.image = f"{image}:{tag}" if tag else image
    if get(values, "scheduling.userScheduler.enabled"):
        k.scheduler_name = f"{RELEASE}-user-scheduler"
    if get(values, "scheduling.podPriority.enabled"):
        k.priority_class_name = f"{RELEASE}-default-priority"
    purpose = get(values, "scheduling.userPods.nodeAffinity.matchNodePurpose")
    term = {
        "matchExpressions": [
            {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}
        ]
    }
    if purpose == "prefer":
        k.node_affinity_preferred = [
            *k.get("node_affinity_preferred", []),
            {"weight": 100, "preference": term},
        ]
    elif purpose == "require":
        k.node_affinity_required = [*k.get("node_affinity_required", []), term]
    tolerations = get(values, "scheduling.userPods.tolerations", []) + get(
        values, "singleuser.extraTolerations", []
    )
    if tolerations:
        k.tolerations = tolerations
    storage = get(values, "singleuser.storage.type")
    home = get(values, "singleuser.storage.homeMountPath")
    if storage == "dynamic":
        name = get(values, "singleuser.storage.dynamic.volumeNameTemplate")
        claim = get(values, "singleuser.storage.dynamic.pvcNameTemplate") or "claim-{user_server}"
        k.pvc_name_template = claim
        k.storage_pvc_ensure = True
        _set_if(k, "storage_class", values, "singleuser.storage.dynamic.storageClass")
        _set_if(k, "storage_capacity", values, "singleuser.storage.capacity")
        k.volumes = [{"name": name, "persistentVolumeClaim": {"claimName": claim}}]
        k.volume_mounts = [{"mountPath": home, "name": name}]
    elif storage == "static":
        claim = get(values, "singleuser.storage.static.pvcName")
        k.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": claim}}]
        k.volume_mounts = [
            {
                "mountPath": home,
                "name": "home",
                "subPath": get(values, "singleuser.storage.static.subPath"),
            }
        ]
    k.volumes = [*k.get("volumes", []), *get(values, "singleuser.storage.extraVolumes", [])]
    k.volume_mounts = [
        *k.get("volume_mounts", []),
        *get(values, "singleuser.storage.extraVolumeMounts", []),
    ]
    if get(values, "singleuser.cloudMetadata.blockWithIptables"):
        tools = get(values, "singleuser.networkTools.image")
        ip = get(values, "singleuser.cloudMetadata.ip")
        k.init_containers = [
            *k.get("init_containers", []),
            {
                "name": "block-cloud-metadata",
                "image": f"{tools['name']}:{tools['tag']}",
                "command": [
                    *("iptables", "--append", "OUTPUT", "--protocol", "tcp"),
                    *("--destination", ip, "--destination-port", "80", "--jump", "DROP"),
                ],
                "securityContext": {
                    "privileged": True,
                    "runAsUser": 0,
                    "capabilities": {"add": ["NET_ADMIN"]},
                },
            },
        ]


def hub_config(values: dict) -> Config:
    """The hub's Config from merged z2jh values (see the module's docstring)."""
    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.JupyterHub.cleanup_servers = False
    db_type = get(values, "hub.db.type")
    if db_type == "sqlite-pvc":
        c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"
    elif db_type == "sqlite-memory":
        c.JupyterHub.db_url = "sqlite://"
    else:
        _set_if(c.JupyterHub, "db_url", values, "hub.db.url")
    for trait in (
        "concurrent_spawn_limit",
        "active_server_limit",
        "base_url",
        "allow_named_servers",
        "named_server_limit_per_user",
        "authenticate_prometheus",
        "redirect_to_server",
        "shutdown_on_logout",
        "template_paths",
        "template_vars",
    ):
        _set_if(c.JupyterHub, trait, values, "hub." + _camel(trait))
    c.JupyterHub.hub_connect_url = "http://hub:8081"
    _set_if(c.Spawner, "consecutive_failure_limit", values, "hub.consecutiveFailureLimit")
    _kubespawner(c, values)
    services = []
    for name, service in get(values, "hub.services", {}).items():
        service.setdefault("name", name)
        service.pop("apiToken", None)
        service["api_token"] = generated_token(f"hub.services.{name}.apiToken")
        services.append(service)
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = [
        {"name": name, **role} for name, role in get(values, "hub.loadRoles", {}).items()
    ]
    _set_if(c.Spawner, "cmd", values, "singleuser.cmd")
    _set_if(c.Spawner, "default_url", values, "singleuser.defaultUrl")
    c.CryptKeeper.keys = [generated_token("hub.config.CryptKeeper.keys")]
    for cls, settings in get(values, "hub.config", {}).items():
        if cls == "JupyterHub":
            for seeded in ("proxy_auth_token", "cookie_secret", "services"):
                settings.pop(seeded, None)
        if cls == "CryptKeeper":
            settings.pop("keys", None)
        c[cls].update(settings)
    for _key, snippet in sorted(get(values, "hub.extraConfig", {}).items()):
        exec(compile(snippet, f"hub.extraConfig.{_key}", "exec"), {"c": c})  # noqa: S102
    return c


def gateway_config(values: dict) -> Config:
    """dask-gateway-server's Config from merged dask-gateway chart values."""
    c = Config()
    c.DaskGateway.backend_class = "dask_gateway_server.backends.kubernetes.KubeBackend"
    c.DaskGateway.log_level = get(values, "gateway.loglevel")
    c.Proxy.prefix = get(values, "gateway.prefix")
    auth = get(values, "gateway.auth.type")
    if auth == "jupyterhub":
        c.DaskGateway.authenticator_class = "dask_gateway_server.auth.JupyterHubAuthenticator"
        c.JupyterHubAuthenticator.jupyterhub_api_token = generated_token(
            get(values, "gateway.auth.jupyterhub.apiTokenFromSecretKey")
        )
        _set_if(
            c.JupyterHubAuthenticator,
            "jupyterhub_api_url",
            values,
            "gateway.auth.jupyterhub.apiUrl",
        )
        _set_if(
            c.JupyterHubAuthenticator,
            "jupyterhub_service_name",
            values,
            "gateway.auth.jupyterhub.jupyterhubServiceName",
        )
    elif auth == "custom":
        cls = get(values, "gateway.auth.custom.class")
        c.DaskGateway.authenticator_class = cls
        c[cls.rsplit(".", 1)[-1]].update(get(values, "gateway.auth.custom.config", {}))
    image = get(values, "gateway.backend.image")
    c.KubeClusterConfig.image = f"{image['name']}:{image['tag']}"
    c.KubeClusterConfig.namespace = get(values, "gateway.backend.namespace") or "af"
    for role in ("scheduler", "worker"):
        for field, trait in (("cores", "cores"), ("memory", "memory")):
            for kind, suffix in (("request", ""), ("limit", "_limit")):
                _set_if(
                    c.KubeClusterConfig,
                    f"{role}_{trait}{suffix}",
                    values,
                    f"gateway.backend.{role}.{field}.{kind}",
                )
        _set_if(
            c.KubeClusterConfig,
            f"{role}_extra_pod_config",
            values,
            f"gateway.backend.{role}.extraPodConfig",
        )
        _set_if(
            c.KubeClusterConfig,
            f"{role}_extra_container_config",
            values,
            f"gateway.backend.{role}.extraContainerConfig",
        )
    _set_if(c.KubeClusterConfig, "worker_threads", values, "gateway.backend.worker.threads")
    extra = get(values, "gateway.extraConfig", {})
    snippets = sorted(extra.items()) if isinstance(extra, dict) else [("extraConfig", extra)]
    for _key, snippet in snippets:
        exec(compile(snippet, f"gateway.extraConfig.{_key}", "exec"), {"c": c})  # noqa: S102
    return c
