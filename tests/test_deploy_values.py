"""helm-values/ against the charts' own schemas, as helm checks them at install time.

Helm merges the chart's defaults, the base file and the site overlay, then validates the
result against the chart's values.schema.json; these tests do the same with the
schemas in tests/data/chart-schemas (see its README for where they come from). The
Kubernetes objects the values add by hand (the sidecar, the manifests in
helm-values/manifests) are validated strictly with kubernetes-validate.
"""

from __future__ import annotations

import copy

import jsonschema
import kubernetes_validate
import pytest
import yaml
from harness.deploy_chart import CHARTS, SITES, VALUES, get, helm_merge, load_yaml, merged_values

K8S_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
CASES = [(chart, site) for chart in ("jupyterhub", "dask-gateway") for site in [None, *SITES]]


def _validator(chart: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(load_yaml(CHARTS / chart / "values.schema.yaml"))


def _errors(chart: str, values: dict) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator(chart).iter_errors(values)
    ]


@pytest.mark.parametrize(("chart", "site"), CASES, ids=lambda x: x or "base")
def test_values_validate_against_the_charts_schema(chart, site):
    assert _errors(chart, merged_values(chart, site)) == []


def test_every_site_has_an_overlay_for_both_charts():
    assert SITES == ["cloud-gpu", "onprem-cvmfs-slurm"]
    for site in SITES:
        for chart in ("jupyterhub", "dask-gateway"):
            assert (VALUES / "sites" / site / f"{chart}.yaml").is_file()


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        # a typo in a key: the chart's schema forbids unknown keys
        ({"hub": {"extraConfg": {}}}, "Additional properties are not allowed ('extraConfg'"),
        ({"hub": {"db": {"type": "postgresql"}}}, "'postgresql' is not one of"),
        (
            {"scheduling": {"userPlaceholder": {"replicas": "4"}}},
            "scheduling.userPlaceholder.replicas: '4' is not of type 'integer'",
        ),
        (
            {"hub": {"config": {"ipamauthenticator": {}}}},
            "'ipamauthenticator' does not match any of the regexes",
        ),
    ],
)
def test_a_mistake_in_the_values_is_refused_by_the_schema(mistake, expected):
    values = helm_merge(merged_values("jupyterhub", "cloud-gpu"), mistake)
    errors = _errors("jupyterhub", values)
    assert len(errors) == 1
    assert expected in errors[0]


@pytest.mark.parametrize(
    ("base", "overlay", "merged"),
    [
        ({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}, {"a": {"b": 1, "c": 3}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),  # lists are replaced whole
        ({"a": {"b": 1}, "d": 4}, {"a": None}, {"d": 4}),  # null removes the key
        ({"a": 1}, {"a": {"b": 2}}, {"a": {"b": 2}}),
        ({}, {"a": {"b": None}}, {"a": {"b": None}}),
    ],
)
def test_helm_merge(base, overlay, merged):
    before = copy.deepcopy(base)
    assert helm_merge(base, overlay) == merged
    assert base == before


def _pod(containers: list, volumes: list) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hub"},
        "spec": {"containers": containers, "volumes": volumes},
    }


@pytest.mark.parametrize("site", [None, *SITES], ids=lambda x: x or "base")
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_containers_beside_the_hub_are_valid_kubernetes(site, version):
    values = merged_values("jupyterhub", site)
    sidecars = get(values, "hub.extraContainers")
    assert [s["name"] for s in sidecars] == ["af-accounting"]
    volumes = [
        {"name": "files", "secret": {"secretName": "hub"}},
        *get(values, "hub.extraVolumes", []),
    ]
    kubernetes_validate.validate(_pod(sidecars, volumes), version, strict=True)


def test_a_broken_sidecar_is_refused_by_kubernetes_validate():
    sidecar = copy.deepcopy(get(merged_values("jupyterhub"), "hub.extraContainers")[0])
    sidecar["ports"][0]["containerPort"] = "10101"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(_pod([sidecar], []), "1.30.0", strict=True)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(
    "manifest", sorted((VALUES / "manifests").glob("*.yaml")), ids=lambda p: p.name
)
def test_manifests_beside_the_charts_are_valid_kubernetes(manifest, version):
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("site", [None, *SITES], ids=lambda x: x or "base")
def test_gateway_runs_the_quota_backend_with_af_accounting_from_its_env(site, monkeypatch):
    from harness.deploy_chart import gateway_config

    from jhub_af.accounting import AccountingClient
    from jhub_af.gateway.kube import QuotaKubeBackend

    values = merged_values("dask-gateway", site)
    env = {e["name"]: e for e in get(values, "gateway.env")}
    # af-accounting listens on the hub's service, port 10101 (the sidecar's)
    hub_values = merged_values("jupyterhub", site)
    ports = {p["name"]: p["port"] for p in get(hub_values, "hub.service.extraPorts")}
    assert env["AF_ACCOUNTING_URL"]["value"] == (
        f"http://hub:{ports['af-accounting']}/services/af-accounting/api/v1/"
    )
    # the token is the hub service "dask-gateway"'s, whose role may reserve
    assert env["AF_ACCOUNTING_API_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "hub", "key": "hub.services.dask-gateway.apiToken"}
    }
    scopes = get(hub_values, "hub.loadRoles.dask-gateway.scopes")
    assert "custom:jhub-af:accounting-reserve" in scopes
    assert "access:services!service=af-accounting" in scopes
    # the chart copies gateway.env into the gateway's container: valid Kubernetes there
    container = {"name": "gateway", "image": "gateway", "env": get(values, "gateway.env")}
    kubernetes_validate.validate(_pod([container], []), "1.30.0", strict=True)

    # the pod's environment, as Kubernetes would set it, reaches the AccountingClient
    monkeypatch.setenv("AF_ACCOUNTING_URL", env["AF_ACCOUNTING_URL"]["value"])
    monkeypatch.setenv("AF_ACCOUNTING_API_TOKEN", "from-the-secret")
    c = gateway_config(values)
    assert c.DaskGateway.backend_class == "jhub_af.gateway.kube.QuotaKubeBackend"
    backend = QuotaKubeBackend(config=c)
    client = AccountingClient(parent=backend)
    assert client.url == env["AF_ACCOUNTING_URL"]["value"]
    assert client.api_token == "from-the-secret"
