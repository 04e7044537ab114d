"""The configuration in helm-values/ really loads, with the real classes.

- The hub: the Config z2jh would build from the values (tests/harness/deploy_chart.py) is
  given to a real JupyterHub, which initializes (database, custom scopes, roles,
  services, authenticator, spawner class); the spawner it makes for a user has the
  site's catalogue.
- Every kubernetes profile (each size too) becomes a pod through KubeSpawner's own
  ``get_pod_manifest()``, with the chart's KubeSpawner settings, validated strictly with
  kubernetes-validate. KubeSpawner is built with ``_mock=True`` and a dummy kube config:
  no Kubernetes API server can run here, and none is contacted.
- af-accounting's config file (hub.extraFiles) loads in the real service application;
  the Dask Gateway's config loads in dask-gateway-server's classes.
"""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
from batchspawner.api import BatchSpawnerAPIHandler
from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig
from dask_gateway_server.models import User as GatewayUser
from harness.deploy_chart import (
    SITES,
    gateway_config,
    generated_token,
    get,
    hub_config,
    merged_values,
)
from jupyterhub import apihandlers, orm
from jupyterhub.app import JupyterHub
from jupyterhub.crypto import CryptKeeper
from kubernetes_asyncio.client import ApiClient
from kubespawner import KubeSpawner
from traitlets.utils.importstring import import_item

from jhub_af.accounting import RESERVE_SCOPE, accounting_configured
from jhub_af.accounting.hubconfig import SERVICE_SCOPES
from jhub_af.accounting.service import AccountingService
from jhub_af.auth import IAMAuthenticator, bearer_token_roles
from jhub_af.gateway.auth import HubAuthenticator
from jhub_af.spawner import ProfileSpawner, parse_catalogue, select
from jhub_af.spawner.callback import JobCallbackHandler
from jhub_af.spawner.check import check_catalogue, known_groups_of
from jhub_af.spawner.kube import KubeProfiles, kube_settings
from jhub_af.spawner.slurm import GuardedSlurmSpawner
from jhub_af.spawner.spawner import apply_settings

# KubeSpawner loads a kube config at construction; none is contacted
pytestmark = pytest.mark.usefixtures("dummy_kubeconfig")

SITE_IDS = [None, *SITES]
K8S_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]


def _site_id(site):
    return site or "base"


async def _initialized_hub(site, tmp_path) -> JupyterHub:
    c = hub_config(merged_values("jupyterhub", site))
    # the chart's PostgreSQL is not here: the same schema on SQLite
    assert c.JupyterHub.db_url.startswith("postgresql://jupyterhub@")
    c.JupyterHub.db_url = f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(tmp_path / "cookie_secret")
    c.JupyterHub.pid_file = str(tmp_path / "jupyterhub.pid")
    JupyterHub.clear_instance()
    CryptKeeper.clear_instance()
    app = JupyterHub.instance(config=c)
    await app.initialize([])
    return app


@pytest.mark.parametrize("site", SITE_IDS, ids=_site_id)
async def test_hub_initializes_with_the_values_config(site, tmp_path):
    app = await _initialized_hub(site, tmp_path)
    try:
        assert isinstance(app.authenticator, IAMAuthenticator)
        assert app.authenticator.enable_auth_state
        assert issubclass(app.spawner_class, ProfileSpawner)
        assert set(app.custom_scopes) == {
            "custom:jhub-af:bearer-token",
            "custom:jhub-af:accounting-reserve",
            "custom:jhub-af:accounting-read",
            "custom:jhub-af:ssh",
        }
        roles = {r.name: set(r.scopes) for r in app.db.query(orm.Role)}
        # tokens users make may open SSH sessions; their servers' tokens may not
        assert "custom:jhub-af:ssh!user" in roles["user"]
        assert not any(s.startswith("custom:jhub-af:ssh") for s in roles["server"])
        assert roles["af-spawner"] == {RESERVE_SCOPE, "access:services!service=af-accounting"}
        services = {s.name for s in app.db.query(orm.Service)}
        assert {"af-accounting", "af-spawner", "dask-gateway"} <= services

        user = orm.User(name="alice")
        app.db.add(user)
        app.db.commit()
        spawner = app.users[user].spawners[""]
        assert isinstance(spawner, app.spawner_class)
        entries = get(merged_values("jupyterhub", site), "hub.config.ProfileSpawner.profiles")
        assert [p.slug for p in spawner.catalogue] == [e["slug"] for e in entries]
        # every start is reserved through af-accounting, exactly once (no second layer)
        assert type(spawner) is ProfileSpawner
        assert spawner.accounting == "on" and accounting_configured(spawner)
        assert spawner.config.AccountingClient.api_token == generated_token(
            "hub.services.af-spawner.apiToken"
        )
    finally:
        JupyterHub.clear_instance()
        CryptKeeper.clear_instance()


@pytest.mark.parametrize("site", SITE_IDS, ids=_site_id)
def test_catalogue_passes_check_config(site):
    c = hub_config(merged_values("jupyterhub", site))
    report = check_catalogue(
        c.ProfileSpawner.profiles, known_groups_of(c), KubeProfiles(config=c).gpu_types
    )
    assert report.problems == []
    assert report.everyone, "somebody who signs in must be able to start something"


@pytest.mark.parametrize("site", SITE_IDS, ids=_site_id)
def test_roles_are_the_narrow_ones_jhub_af_defines(site):
    values = merged_values("jupyterhub", site)
    roles = get(values, "hub.loadRoles")
    services = set(get(values, "hub.services"))
    assert set(roles["af-accounting"]["scopes"]) == set(SERVICE_SCOPES)
    for bearer in bearer_token_roles():
        assert set(bearer["scopes"]) <= set(roles[bearer["name"]]["scopes"])
    for name, role in roles.items():
        # a role naming a service that is not defined is fatal at hub start
        assert set(role.get("services", [])) <= services, name
        for scope in role["scopes"]:
            if scope.startswith("access:services!service="):
                assert scope.split("=", 1)[1] in services, (name, scope)


@pytest.mark.parametrize("site", SITE_IDS, ids=_site_id)
def test_accounting_sidecar_is_wired_to_its_service(site, tmp_path):
    values = merged_values("jupyterhub", site)
    [sidecar] = get(values, "hub.extraContainers")
    env = {e["name"]: e for e in sidecar["env"]}
    name = env["JUPYTERHUB_SERVICE_NAME"]["value"]
    port = sidecar["ports"][0]["containerPort"]
    assert get(values, f"hub.services.{name}.url") == f"http://hub:{port}"
    assert env["JUPYTERHUB_SERVICE_PREFIX"]["value"] == f"/services/{name}/"
    assert env["JUPYTERHUB_SERVICE_URL"]["value"].endswith(f":{port}")
    assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "hub",
        "key": f"hub.services.{name}.apiToken",
    }
    client_url = get(values, "hub.config.AccountingClient.url")
    assert client_url == f"http://127.0.0.1:{port}/services/{name}/api/v1/"
    assert [p["port"] for p in get(values, "hub.service.extraPorts")] == [port]
    [mount] = sidecar["volumeMounts"]
    config_file = get(values, "hub.extraFiles")[mount["subPath"]]
    assert config_file["mountPath"] == mount["mountPath"] == sidecar["command"][-1]

    # the file as the sidecar reads it, in the real service application
    settings = config_file["data"]
    assert settings["AccountingService"]["db_url"].startswith("postgresql+psycopg://")
    settings["AccountingService"]["db_url"] = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    path = tmp_path / "af-accounting.json"
    path.write_text(json.dumps(settings))
    service = AccountingService()
    service.initialize(["--config", str(path)])
    try:
        assert service.admin_groups == settings["AccountingService"]["admin_groups"]
        assert service.policy.defaults["servers"] == 1
        for group, limits in settings["QuotaPolicy"]["groups"].items():
            assert set(service.policy.groups[group]) == set(limits)
            assert service.policy.groups[group].get("cores") == limits.get("cores")
    finally:
        service.executor.shutdown()


def _profiles_and_options(site):
    c = hub_config(merged_values("jupyterhub", site))
    for profile in parse_catalogue(c.ProfileSpawner.profiles):
        if profile.backend != "kubernetes":
            continue
        sizes = profile.choices["size"].options if "size" in profile.choices else [None]
        for size in sizes:
            options = {"profile": profile.slug, **({"size": size} if size else {})}
            yield pytest.param(site, options, id=f"{_site_id(site)}-{profile.slug}-{size}")


POD_CASES = [case for site in SITE_IDS for case in _profiles_and_options(site)]


async def _pod(site, options) -> tuple[dict, object]:
    c = hub_config(merged_values("jupyterhub", site))
    profiles = parse_catalogue(c.ProfileSpawner.profiles)
    [profile] = [p for p in profiles if p.slug == options["profile"]]
    selection = select(options, profiles, list(profile.groups), admin=False)
    spawner = KubeSpawner(_mock=True, config=c)
    apply_settings(spawner, kube_settings(selection, KubeProfiles(config=c)))
    pod = await spawner.get_pod_manifest()
    async with ApiClient() as api:
        manifest = api.sanitize_for_serialization(pod)
    manifest.setdefault("apiVersion", "v1")
    manifest.setdefault("kind", "Pod")
    return manifest, selection


@pytest.mark.parametrize(("site", "options"), POD_CASES)
async def test_every_profile_pod_is_valid_kubernetes(site, options):
    manifest, selection = await _pod(site, options)
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)
    spec = manifest["spec"]
    [notebook] = [x for x in spec["containers"] if x["name"] == "notebook"]
    assert notebook["image"] == selection.image
    assert notebook["resources"]["limits"]["cpu"] == float(selection.cores)
    # the chart's scheduling: the user scheduler, pod priority, user-node tolerations
    assert spec["schedulerName"] == "af-user-scheduler"
    assert spec["priorityClassName"] == "af-default-priority"
    assert {"hub.jupyter.org/dedicated", "hub.jupyter.org_dedicated"} <= {
        t["key"] for t in spec["tolerations"]
    }
    mounts = {m["mountPath"] for m in notebook["volumeMounts"]}
    assert "/home/jovyan" in mounts
    assert {f"/cvmfs/{r}" for r in selection.profile.cvmfs} <= mounts
    if selection.profile.gpu_type:
        assert notebook["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert spec["nodeSelector"]


async def test_cloud_t4_pod_lands_on_a_spot_t4_node_with_cvmfs_from_the_csi_claim():
    manifest, _ = await _pod("cloud-gpu", {"profile": "t4"})
    spec = manifest["spec"]
    assert spec["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-tesla-t4",
        "cloud.google.com/gke-spot": "true",
    }
    keys = {t["key"] for t in spec["tolerations"]}
    assert {"nvidia.com/gpu", "cloud.google.com/gke-spot"} <= keys
    # matchNodePurpose: require
    [term] = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"][0]["key"] == "hub.jupyter.org/node-purpose"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["cvmfs"]["persistentVolumeClaim"] == {"claimName": "cvmfs", "readOnly": True}


async def test_onprem_pod_mounts_cvmfs_from_the_node():
    manifest, _ = await _pod("onprem-cvmfs-slurm", {"profile": "analysis"})
    paths = {v["hostPath"]["path"] for v in manifest["spec"]["volumes"] if "hostPath" in v}
    assert paths == {"/cvmfs/cms.cern.ch", "/cvmfs/sft.cern.ch"}


def test_onprem_slurm_backend_loads_its_config(monkeypatch):
    # the handlers a hub has before its config runs, batchspawner's among them
    monkeypatch.setattr(
        apihandlers, "default_handlers", [(r"/api/batchspawner", BatchSpawnerAPIHandler)]
    )
    c = hub_config(merged_values("jupyterhub", "onprem-cvmfs-slurm"))
    assert apihandlers.default_handlers == [(r"/api/batchspawner", JobCallbackHandler)]
    spawner = GuardedSlurmSpawner(config=c)
    assert spawner.exec_prefix.startswith("ssh -i /etc/jhub-af/ssh/id_ed25519 ")
    assert spawner.exec_prefix.endswith("sudo -u {username} --")
    assert spawner.cmd == ["/opt/af/bin/jupyterhub-singleuser"]
    assert spawner.hub_connect_url == "https://af.infn.example"
    [hpc] = [p for p in parse_catalogue(c.ProfileSpawner.profiles) if p.backend == "slurm"]
    assert hpc.partition == "cms"


@pytest.mark.parametrize("site", SITE_IDS, ids=_site_id)
def test_gateway_config_loads_with_jhub_af_auth_and_options(site):
    c = gateway_config(merged_values("dask-gateway", site))
    assert import_item(c.DaskGateway.authenticator_class) is HubAuthenticator
    auth = HubAuthenticator(config=c)
    assert auth.jupyterhub_service_name == "dask-gateway"
    assert auth.jupyterhub_api_token == generated_token("hub.services.dask-gateway.apiToken")
    # the same token and service name the hub's values register
    hub_values = merged_values("jupyterhub", site)
    assert "dask-gateway" in get(hub_values, "hub.services")
    assert get(hub_values, "hub.services.dask-gateway.url") == "http://traefik-dask-gateway"

    cluster = KubeClusterConfig(config=c)
    assert cluster.image == "registry.example.org/jhub-af/user:2026.1"
    assert cluster.worker_memory == 2 * 2**30
    assert cluster.scheduler_cmd == ["dask", "scheduler"]
    assert cluster.worker_cmd == ["dask", "worker"]

    options_for = c.Backend.cluster_options
    physicist = options_for(GatewayUser("alice", groups=["/atlas", "/atlas/users"]))
    guest = options_for(GatewayUser("carol", groups=[]))
    cores = {f.field: f for f in physicist.fields}["worker_cores"]
    assert cores.max == 2
    assert {f.field: f for f in guest.fields}["worker_cores"].max == 1
    # a forged value is refused with a sentence naming the field
    with pytest.raises(ValueError, match="worker_cores"):
        guest.parse_options({"worker_cores": 8})
