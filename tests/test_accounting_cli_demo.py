"""`jhub-af usage` over a real ledger, the demo's quota policy, and af-accounting in the
running demo facility."""

from __future__ import annotations

import html
import json
import sqlite3
import time
from datetime import datetime, timezone

import psutil
import pytest
import requests
from harness import login, spawn_server, stop_server

from jhub_af.accounting import QuotaPolicy, effective_limits
from jhub_af.accounting.ledger import Ledger
from jhub_af.accounting.resources import parse_request
from jhub_af.cli import main
from jhub_af.demo import DEMO_POLICY
from jhub_af.hub import spawn_body

HOUR = 3600.0
START = datetime(2026, 10, 1, tzinfo=timezone.utc).timestamp()


@pytest.fixture
def ledger_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    ledger = Ledger(url)
    ledger.upgrade()

    def run(user, groups, cores, gpus, start, hours):
        req = parse_request(
            {
                "user": user,
                "kind": "server",
                "server": f"s{start}",
                "resources": {"cores": cores, "memory": "2G", "gpus": gpus},
            }
        )
        _, r = ledger.reserve(
            req,
            groups,
            "hub",
            lambda u, g: _granted(),
            period=(START, START + 31 * 24 * HOUR),
            now=start,
        )
        ledger.confirm(r.id, "hub", ttl=hours * HOUR + 1, now=start)
        ledger.release(r.id, "hub", now=start + hours * HOUR)

    run("alice", ["/atlas", "/atlas/users"], 2, {}, START + HOUR, 3)
    run("bob", ["/cms", "/cms/gpu"], 4, {"t4": 1}, START + 5 * HOUR, 2)
    run("bob", ["/cms", "/cms/gpu"], 1, {}, START - 2 * HOUR, 4)  # half in September
    ledger.dispose()
    return url


def _granted():
    from jhub_af.accounting.policy import Decision

    return Decision(True)


def usage(capsys, *args) -> tuple[int, str, str]:
    status = main(["usage", *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_usage_table_for_all_users_and_groups(ledger_url, capsys):
    status, out, _ = usage(
        capsys, "--db-url", ledger_url, "--since", "2026-10-01", "--until", "2026-11-01"
    )
    assert status == 0
    assert out.splitlines() == [
        "kind   name          core-hours  GPU-hours  memory GiB-hours",
        "user   alice         6.00        0.00       6.00",
        "user   bob           10.00       2.00       8.00",
        "group  /atlas        6.00        0.00       6.00",
        "group  /atlas/users  6.00        0.00       6.00",
        "group  /cms          10.00       2.00       8.00",
        "group  /cms/gpu      10.00       2.00       8.00",
    ]


def test_usage_json_and_csv_for_one_user_or_group(ledger_url, capsys):
    _, out, _ = usage(
        capsys,
        "--db-url",
        ledger_url,
        "--user",
        "bob",
        "--since",
        "2026-10-01",
        "--until",
        "2026-11-01",
        "--format",
        "json",
    )
    assert json.loads(out) == [
        {
            "kind": "user",
            "name": "bob",
            "core_hours": 10.0,
            "gpu_hours": 2.0,
            "memory_gib_hours": 8.0,
        }
    ]
    _, out, _ = usage(
        capsys,
        "--db-url",
        ledger_url,
        "--group",
        "/atlas/users",
        "--since",
        "2026-10-01",
        "--until",
        "2026-11-01",
        "--format",
        "csv",
    )
    assert out.splitlines() == [
        "kind,name,core_hours,gpu_hours,memory_gib_hours",
        "group,/atlas/users,6.0,0.0,6.0",
    ]
    # a user with no usage is shown with zeros, not left out
    _, out, _ = usage(
        capsys,
        "--db-url",
        ledger_url,
        "--user",
        "carol",
        "--since",
        "2026-10-01",
        "--until",
        "2026-11-01",
        "--format",
        "csv",
    )
    assert out.splitlines()[1] == "user,carol,0.0,0.0,0.0"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--since", "last tuesday"],
            "jhub-af usage: --since 'last tuesday' is not a date; write it like 2026-11-01.",
        ),
        (
            ["--since", "2026-11-01", "--until", "2026-10-01"],
            "jhub-af usage: --until must be after --since.",
        ),
    ],
)
def test_usage_bad_dates(ledger_url, capsys, args, error):
    status, out, err = usage(capsys, "--db-url", ledger_url, *args)
    assert (status, out, err.strip()) == (2, "", error)


@pytest.mark.parametrize(
    ("user", "groups", "key", "value"),
    [
        ("alice", ["/atlas", "/atlas/users"], "servers", 1),
        ("alice", ["/atlas", "/atlas/users"], "cores", 2),
        ("alice", ["/atlas", "/atlas/users"], "core_hours", 500),
        ("alice", ["/atlas", "/atlas/users"], "gpus:t4", 0),
        ("bob", ["/cms", "/cms/gpu"], "servers", 1),
        ("bob", ["/cms", "/cms/gpu"], "gpus:t4", 1),
        ("bob", ["/cms", "/cms/gpu"], "core_hours", 300),
        ("admin", ["/atlas"], "core_hours", None),
    ],
)
def test_demo_policy(user, groups, key, value):
    limits = effective_limits(QuotaPolicy(**DEMO_POLICY), user, groups, ["t4"])
    assert limits[key].value == value


@pytest.mark.integration
def test_demo_runs_accounting_with_its_policy(demo_facility):
    url = demo_facility.url
    alice = login(url, "alice", "demo")
    token = alice.post(f"{url}/hub/api/users/alice/tokens", json={}, timeout=30).json()["token"]
    headers = {"Authorization": f"token {token}"}
    policy = None
    for _ in range(100):
        r = requests.get(
            f"{url}/services/af-accounting/api/v1/policy/me", headers=headers, timeout=10
        )
        if r.status_code == 200:
            policy = r.json()
            break
        time.sleep(0.3)
    assert policy is not None
    assert policy["limits"]["cores"] == {"value": 2, "source": "group", "group": "/atlas/users"}
    assert policy["limits"]["core_hours"]["value"] == 500
    page = alice.get(f"{url}/services/af-accounting/", timeout=30)
    assert page.status_code == 200 and "Usage of alice" in page.text
    assert "/services/af-accounting/" in alice.get(f"{url}/hub/home", timeout=30).text


ALICE_LARGE_REFUSED = (
    "Your group /atlas/users may use 2 cores at a time; you are using none and asked for 4 "
    "more. Choose a smaller profile or size, or ask your VO admin for a larger quota."
)


def _alice_rows(demo_facility) -> list[tuple]:
    ledger = demo_facility.workdir / "data" / "accounting" / "af-accounting.sqlite"
    with sqlite3.connect(ledger) as db:
        return db.execute(
            "SELECT id, state, ended FROM af_reservations WHERE user = 'alice' ORDER BY created"
        ).fetchall()


@pytest.mark.integration
def test_demo_refuses_alices_large_profile_naming_her_quota(demo_facility):
    # the demo lets alice run 1 server of up to 2 cores; "large" has 4
    url = demo_facility.url
    alice = login(url, "alice", "demo")
    if alice.get(f"{url}/hub/api/user", timeout=10).json()["servers"]:
        stop_server(alice, url, "alice")  # another demo test left hers running
    before = _alice_rows(demo_facility)
    r = alice.post(
        f"{url}/hub/api/users/alice/server", json=spawn_body({"profile": "large"}, "6"), timeout=60
    )
    assert (r.status_code, r.json()["message"]) == (403, ALICE_LARGE_REFUSED)
    page = alice.post(
        f"{url}/hub/spawn/alice",
        data={"profile": "large", "_xsrf": alice.cookies.get("_xsrf", path="/hub/")},
        timeout=60,
    )
    assert page.status_code == 403
    assert html.escape(ALICE_LARGE_REFUSED) in page.text
    model = alice.get(f"{url}/hub/api/user", timeout=10).json()
    assert model["servers"] == {} and model["pending"] is None
    # nothing reserved or recorded: no new row, none left open
    assert _alice_rows(demo_facility) == before
    assert all(state in ("released", "expired") for _, state, _ in before)


@pytest.mark.integration
def test_demo_server_token_reads_what_is_left_of_the_quota(demo_facility):
    # the JupyterLab panel reads usage/me and policy/me with the server's own token
    url = demo_facility.url
    alice = login(url, "alice", "demo")
    if not alice.get(f"{url}/hub/api/user", timeout=10).json()["servers"]:
        spawn_server(alice, url, "alice")
    home = str(demo_facility.workdir / "data" / "home" / "alice")
    [token] = {
        p.environ()["JUPYTERHUB_API_TOKEN"]
        for p in psutil.process_iter()
        if _environ(p).get("JUPYTERHUB_USER") == "alice" and _environ(p).get("HOME") == home
    }
    headers = {"Authorization": f"token {token}"}
    policy = requests.get(
        f"{url}/services/af-accounting/api/v1/policy/me", headers=headers, timeout=30
    )
    assert policy.status_code == 200, policy.text
    remaining = policy.json()["remaining"]
    assert remaining["servers"] == {"limit": 1, "in_use": 1, "left": 0}
    assert remaining["cores"] == {"limit": 2, "in_use": 1, "left": 1}
    assert remaining["core_hours"]["limit"] == 500
    usage = requests.get(
        f"{url}/services/af-accounting/api/v1/usage/me", headers=headers, timeout=30
    )
    assert usage.status_code == 200 and usage.json()["user"] == "alice"
    assert [r["kind"] for r in usage.json()["running"]] == ["server"]
    stop_server(alice, url, "alice")


def _environ(process) -> dict:
    try:
        return process.environ()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return {}


def test_pages_escape_names_and_csv_defuses_formulas():
    from tornado.template import Loader

    from jhub_af.accounting.pages import COLUMNS, TEMPLATES, csv_cell

    evil = '<script>alert("x")</script>'
    html = (
        Loader(str(TEMPLATES), autoescape="xhtml_escape")
        .load("admin.html")
        .generate(
            tables=[{"by": "group", "rows": [{"name": evil, **{c: 1.0 for c, _ in COLUMNS[1:]}}]}],
            sort=("group", "name", "asc"),
            period="month",
            period_text="2026-11-01 to 2026-11-30",
            columns=lambda by: [(c, by if c == "name" else t) for c, t in COLUMNS],
            prefix="/services/af-accounting/",
            hub_home="/hub/home",
            sees_all=True,
            memory=str,
            when=str,
        )
        .decode()
    )
    assert evil not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert [csv_cell(x) for x in ("=cmd()", "+1", "-2", "@x", "/atlas")] == [
        "'=cmd()",
        "'+1",
        "'-2",
        "'@x",
        "/atlas",
    ]
