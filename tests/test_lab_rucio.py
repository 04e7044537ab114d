"""The Data tab's handlers in a real jupyter server, against a real Rucio server.

One ``jupyter server`` (with jhub_af.lab, as every user's server has it) is started
for this module with several Rucio instances configured: the seeded server with
userpass (rules enabled), the same without rules, with a wrong password, with the
user's IAM-style token file (oidc), and one whose server does not answer. No mock.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from harness import ManagedProcess, free_port, start_jupyter_server

from jhub_af.lab.api import error_body

pytestmark = pytest.mark.integration

TOKEN = "lab-rucio-test-token"


class Lab:
    def __init__(self, url: str, home: Path, token_file: Path, process: ManagedProcess):
        self.url, self.home, self.token_file, self.process = url, home, token_file, process
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {TOKEN}"

    def api(self, path: str) -> str:
        return f"{self.url}/jhub-af/rucio/{path}"

    def get(self, path: str, **params) -> requests.Response:
        return self.http.get(self.api(path), params=params, timeout=120)

    def post(self, path: str, body: dict) -> requests.Response:
        return self.http.post(self.api(path), json=body, timeout=120)

    def wait_download(self, download_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.get(f"downloads/{download_id}").json()
            if state["state"] != "running":
                return state
            time.sleep(0.1)
        raise TimeoutError(f"download {download_id} still running")


def rucio_token(rucio) -> str:
    r = requests.get(
        f"{rucio.url}/auth/userpass",
        headers={
            "X-Rucio-Account": rucio.account,
            "X-Rucio-Username": rucio.username,
            "X-Rucio-Password": rucio.password,
        },
        timeout=30,
    )
    r.raise_for_status()
    return r.headers["X-Rucio-Auth-Token"]


class RecordingRelay(BaseHTTPRequestHandler):
    """A real HTTP relay in front of Rucio that records what the panel asks and how
    much of each streamed answer it read before it hung up (lines relayed)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._relay()

    def do_POST(self):
        self._relay()

    def _relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {"method": self.command, "path": self.path, "body": body, "lines": 0}
        record["complete"] = False
        self.server.records.append(record)
        skip = {"host", "content-length", "connection", "accept-encoding"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        with requests.request(
            self.command,
            self.server.upstream + self.path,
            headers=headers,
            data=body,
            stream=True,
            timeout=600,
        ) as r:
            self.send_response(r.status_code)
            hop = {"content-length", "transfer-encoding", "connection", "content-encoding"}
            for k, v in r.headers.items():
                if k.lower() not in hop:
                    self.send_header(k, v)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for line in r.iter_lines():
                    self.wfile.write(line + b"\n")
                    self.wfile.flush()
                    record["lines"] += 1
                record["complete"] = True
            except (BrokenPipeError, ConnectionResetError):
                pass


@pytest.fixture(scope="module")
def relay(rucio_server):
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingRelay)
    server.upstream = rucio_server.url
    server.records = []
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def start_lab(work: Path, config: dict) -> Lab:
    """A real ``jupyter server`` (jhub_af.lab enabled as installed) with this config."""
    home = work / "home"
    home.mkdir(parents=True)
    config["IdentityProvider"] = {"token": TOKEN}
    server = start_jupyter_server(
        work, {"jupyter_server_config.json": json.dumps(config)}, root_dir=home
    )
    return Lab(server.url, home, work / "bearer_token", server.process)


@pytest.fixture(scope="module")
def lab(rucio_server, relay, tmp_path_factory):
    work = tmp_path_factory.mktemp("lab-rucio")
    config = rucio_server.lab_config(
        rucio_server.instance("test"),
        rucio_server.instance("norules", replica_requests=False, destination_rses=[]),
        rucio_server.instance("badpass", password="not-the-password"),
        rucio_server.instance(
            "oidc", auth="oidc", token_file=str(work / "bearer_token"), username="", password=""
        ),
        rucio_server.instance("down", url=f"http://127.0.0.1:{free_port()}"),
        rucio_server.instance("relayed", url=f"http://127.0.0.1:{relay.server_address[1]}"),
    )
    lab = start_lab(work, config)
    yield lab
    lab.process.stop()


def names(items: list[dict]) -> list[str]:
    return sorted(i["name"] for i in items)


# --- instances, search, navigation ------------------------------------------------


def test_instances_are_listed_without_secrets(lab, rucio_server):
    r = lab.get("instances")
    assert r.status_code == 200
    by_name = {i["name"]: i for i in r.json()["instances"]}
    assert sorted(by_name) == ["badpass", "down", "norules", "oidc", "relayed", "test"]
    assert by_name["test"] == {
        "name": "test",
        "url": rucio_server.url,
        "auth": "userpass",
        "replica_requests": True,
        "destination_rses": ["SITE_SCRATCH"],
    }
    assert rucio_server.password not in r.text and "not-the-password" not in r.text


@pytest.mark.parametrize(
    ("pattern", "did_type", "expected"),
    [
        ("ds.ttbar.*", "dataset", ["ds.ttbar.001", "ds.ttbar.002"]),
        ("*", "container", ["cont.ttbar.v1"]),
        (
            "ttbar.001.*",
            "file",
            ["ttbar.001.0001.root", "ttbar.001.0002.root", "ttbar.001.0003.root"],
        ),
        (
            "*ttbar*",
            "all",
            [
                "cont.ttbar.v1",
                "ds.ttbar.001",
                "ds.ttbar.002",
                *[f"ttbar.00{d}.000{f}.root" for d, f in [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]],
            ],
        ),
        ("nothing.like.this*", "all", []),
    ],
)
def test_search_with_wildcards_and_type(lab, pattern, did_type, expected):
    r = lab.get("test/dids", scope="mc23", pattern=pattern, type=did_type)
    assert r.status_code == 200, r.text
    body = r.json()
    assert names(body["items"]) == expected
    assert body["has_more"] is False and body["page"] == 0
    if did_type == "file":
        assert {i["name"]: i["bytes"] for i in body["items"]}["ttbar.001.0001.root"] == 300_000


def test_search_refuses_bad_type_and_paging(lab):
    r = lab.get("test/dids", scope="mc23", pattern="*", type="table")
    assert (r.status_code, r.json()) == (
        400,
        error_body(400, "'type' must be one of all, container, dataset, file."),
    )
    r = lab.get("test/dids", scope="mc23", pattern="*", page_size="5000")
    assert (r.status_code, r.json()) == (
        400,
        error_body(400, "'page' must be 0 or more and 'page_size' 1 to 1000."),
    )
    r = lab.get("test/dids", pattern="*")
    assert (r.status_code, r.json()) == (400, error_body(400, "'scope' is required."))
    r = lab.get("nosuch/dids", scope="mc23")
    assert r.status_code == 404
    assert r.json()["message"].startswith("No Rucio instance named 'nosuch' is configured here")


def test_container_to_dataset_to_files_with_replicas(lab, rucio_server):
    r = lab.get("test/contents", scope="mc23", name="cont.ttbar.v1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["did"] == {
        "scope": "mc23",
        "name": "cont.ttbar.v1",
        "type": "container",
        "bytes": 513_312,
        "events": None,
    }
    assert [(i["name"], i["type"]) for i in body["items"]] == [
        ("ds.ttbar.001", "dataset"),
        ("ds.ttbar.002", "dataset"),
    ]
    r = lab.get("test/contents", scope="mc23", name="ds.ttbar.001")
    body = r.json()
    assert body["did"]["type"] == "dataset" and body["did"]["events"] == 1712
    files = {i["name"]: i for i in body["items"]}
    assert sorted(files) == ["ttbar.001.0001.root", "ttbar.001.0002.root", "ttbar.001.0003.root"]
    first = files["ttbar.001.0001.root"]
    assert (first["bytes"], first["events"], first["type"]) == (300_000, 1000, "file")
    by_rse = {r["rse"]: r["pfns"] for r in first["replicas"]}
    assert sorted(by_rse) == ["SITE_DISK", "SITE_WEB"]
    schemes = sorted(p.split("://")[0] for pfns in by_rse.values() for p in pfns)
    assert schemes == ["file", "https", "root"]
    assert by_rse["SITE_WEB"][0].startswith("https://127.0.0.1:")
    # a file only on SITE_DISK has no https replica
    third = {r["rse"] for r in files["ttbar.001.0003.root"]["replicas"]}
    assert third == {"SITE_DISK"}


def test_contents_of_a_file_and_of_nothing(lab):
    r = lab.get("test/contents", scope="mc23", name="ttbar.001.0001.root")
    assert (r.status_code, r.json()) == (
        400,
        error_body(
            400, "mc23:ttbar.001.0001.root is a file; it has no contents (ask for its replicas)."
        ),
    )
    r = lab.get("test/contents", scope="mc23", name="no.such.dataset")
    assert r.status_code == 404
    assert r.json() == error_body(
        404, "Rucio 'test': Data identifier 'mc23:no.such.dataset' not found."
    )


def test_html_name_comes_back_as_json_text(lab, rucio_server):
    r = lab.get("test/dids", scope="mc23", pattern="<svg*", type="dataset")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert names(r.json()["items"]) == [rucio_server.html_name]
    r = lab.get("test/contents", scope="mc23", name=rucio_server.html_name)
    assert names(r.json()["items"]) == [rucio_server.html_name + ".file"]


# --- paging ------------------------------------------------------------------------


def test_large_dataset_is_paged_with_replicas_of_the_page_only(lab, rucio_server):
    n = rucio_server.big_files
    r = lab.get("test/contents", scope="mc23", name="ds.big", page_size="100")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["page"], body["page_size"], body["has_more"]) == (0, 100, True)
    assert len(body["items"]) == 100
    assert all(i["replicas"] and i["replicas"][0]["rse"] == "SITE_DISK" for i in body["items"])
    first_page = names(body["items"])
    last = lab.get("test/contents", scope="mc23", name="ds.big", page_size="100", page=n // 100 - 1)
    last_body = last.json()
    assert len(last_body["items"]) == 100 and last_body["has_more"] is False
    assert not set(first_page) & set(names(last_body["items"]))
    past = lab.get("test/contents", scope="mc23", name="ds.big", page_size="100", page=n // 100)
    assert past.json()["items"] == [] and past.json()["has_more"] is False


def test_a_page_reads_only_its_part_and_asks_replicas_for_its_files(lab, relay, rucio_server):
    relay.records.clear()
    for page in (0, 1, 2):
        r = lab.get("relayed/contents", scope="mc23", name="ds.big", page_size="100", page=page)
        assert r.status_code == 200 and len(r.json()["items"]) == 100
    # the userpass token is fetched once and kept for the instance
    assert [x["path"] for x in relay.records].count("/auth/userpass") == 1
    files = [x for x in relay.records if x["path"].endswith("/ds.big/files")]
    replicas = [x for x in relay.records if x["path"] == "/replicas/list"]
    assert len(files) == 3 and len(replicas) == 3
    # the file listing was dropped after the page, long before its 10,000 lines
    assert not any(x["complete"] for x in files), [x["lines"] for x in files]
    for page, x in enumerate(replicas):
        asked = [d["name"] for d in json.loads(x["body"])["dids"]]
        assert asked == [f"ds.big.{i:06d}.root" for i in range(page * 100, page * 100 + 100)]


# --- replicas and snippets -------------------------------------------------------------


def test_replicas_of_one_file(lab):
    r = lab.get("test/replicas", scope="mc23", name="ttbar.001.0002.root")
    assert r.status_code == 200
    assert sorted(x["rse"] for x in r.json()["replicas"]) == ["SITE_DISK", "SITE_WEB"]
    r = lab.get("test/replicas", scope="mc23", name="ds.ttbar.001")
    assert (r.status_code, r.json()) == (
        400,
        error_body(400, "mc23:ds.ttbar.001 is a dataset; open it to see its files."),
    )


def test_snippet_opens_the_chosen_replica(lab, rucio_server):
    r = lab.get("test/snippet", scope="mc23", name="ttbar.001.0001.root")
    assert r.status_code == 200
    code, pfn = r.json()["code"], r.json()["pfn"]
    assert pfn.startswith("root://127.0.0.1:1094//")
    assert f"uproot.open({json.dumps(pfn)})" in code
    compile(code, "snippet", "exec")
    https = next(
        p
        for x in lab.get("test/replicas", scope="mc23", name="ttbar.001.0001.root").json()[
            "replicas"
        ]
        for p in x["pfns"]
        if p.startswith("https://")
    )
    r = lab.get("test/snippet", scope="mc23", name="ttbar.001.0001.root", pfn=https)
    assert f"uproot.open({json.dumps(https)})" in r.json()["code"]
    r = lab.get("test/snippet", scope="mc23", name="ttbar.001.0001.root", pfn="https://evil/x")
    assert (r.status_code, r.json()) == (
        400,
        error_body(400, "That PFN is not one of this file's replicas; pick one the panel lists."),
    )
    html_file = rucio_server.html_name + ".file"
    code = lab.get("test/snippet", scope="mc23", name=html_file).json()["code"]
    compile(code, "snippet", "exec")
    assert f"did = {json.dumps('mc23:' + html_file)}" in code


# --- downloads -----------------------------------------------------------------------


def test_download_over_https_into_home_with_progress(lab, rucio_server):
    r = lab.post(
        "test/downloads",
        {"scope": "mc23", "name": "ttbar.001.0001.root", "target": "data/ttbar-1.root"},
    )
    assert r.status_code == 202, r.text
    state = lab.wait_download(r.json()["id"])
    assert state["state"] == "done", state
    assert (state["bytes_done"], state["bytes_total"]) == (300_000, 300_000)
    assert state["path"] == "data/ttbar-1.root" and state["error"] == ""
    written = (lab.home / "data" / "ttbar-1.root").read_bytes()
    source = next(rucio_server.web_dir.rglob("ttbar.001.0001.root")).read_bytes()
    assert written == source
    assert [p.name for p in (lab.home / "data").iterdir()] == ["ttbar-1.root"]  # no .part left


def test_download_from_a_file_replica_into_a_folder(lab):
    (lab.home / "files").mkdir()
    r = lab.post(
        "test/downloads",
        {"scope": "mc23", "name": "ttbar.002.0001.root", "target": "files/"},
    )
    assert r.status_code == 202, r.text
    state = lab.wait_download(r.json()["id"])
    assert (state["state"], state["path"], state["bytes_done"]) == (
        "done",
        "files/ttbar.002.0001.root",
        8192,
    )


def test_download_of_a_missing_replica_fails_and_leaves_nothing(lab, rucio_server):
    # the large dataset's files are registered in Rucio only: their file:// PFNs are missing
    name = f"{rucio_server.big_name}.000007.root"
    r = lab.post("test/downloads", {"scope": "mc23", "name": name, "target": "big/"})
    assert r.status_code == 202, r.text
    state = lab.wait_download(r.json()["id"])
    pfn = next(
        p
        for x in lab.get("test/replicas", scope="mc23", name=name).json()["replicas"]
        for p in x["pfns"]
        if p.startswith("file://")
    )
    assert (state["state"], state["bytes_done"]) == ("failed", 0)
    assert state["error"] == (
        f"The replica {pfn} cannot be read (No such file or directory); "
        "try another replica, or tell your facility's admins."
    )
    assert list((lab.home / "big").iterdir()) == []


def _home_listing(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*"))


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "../x.root",
            "The target '../x.root' contains '..'; give a path inside your home, "
            "e.g. data/file.root.",
        ),
        (
            "data/../../x.root",
            "The target 'data/../../x.root' contains '..'; give a path inside your home, "
            "e.g. data/file.root.",
        ),
        (
            "/etc/passwd",
            "The target '/etc/passwd' is absolute; give a path relative to your home, "
            "e.g. data/file.root.",
        ),
        (
            "escape/x.root",
            "The target 'escape/x.root' leads outside your home through a symbolic link; "
            "choose a folder inside your home.",
        ),
        ("", "Give a target path relative to your home, e.g. data/file.root."),
    ],
)
def test_download_targets_outside_home_are_refused(lab, tmp_path, target, message):
    outside = tmp_path / "outside"
    outside.mkdir()
    link = lab.home / "escape"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(outside)
    before = _home_listing(lab.home)
    passwd = Path("/etc/passwd").read_bytes()
    r = lab.post(
        "test/downloads", {"scope": "mc23", "name": "ttbar.001.0001.root", "target": target}
    )
    assert (r.status_code, r.json()) == (400, error_body(400, message))
    time.sleep(0.3)
    assert _home_listing(lab.home) == before
    assert list(outside.iterdir()) == []
    assert Path("/etc/passwd").read_bytes() == passwd
    link.unlink()


def test_download_never_overwrites(lab):
    keep = lab.home / "keep.root"
    keep.write_bytes(b"my analysis output")
    r = lab.post(
        "test/downloads", {"scope": "mc23", "name": "ttbar.001.0001.root", "target": "keep.root"}
    )
    assert (r.status_code, r.json()) == (
        400,
        error_body(400, "'keep.root' exists already; choose another name or delete it first."),
    )
    assert keep.read_bytes() == b"my analysis output"


def test_unknown_download_id(lab):
    r = lab.get("downloads/0123456789abcdef")
    assert (r.status_code, r.json()) == (
        404,
        error_body(404, "No such download in this server (it may have restarted)."),
    )


# --- rules ----------------------------------------------------------------------------


def test_replica_request_creates_a_rule(lab, rucio_server):
    r = lab.post("test/rules", {"scope": "mc23", "name": "ds.ttbar.002", "rse": "SITE_SCRATCH"})
    assert r.status_code == 201, r.text
    rule_id = r.json()["rule_id"]
    rule = requests.get(
        f"{rucio_server.url}/rules/{rule_id}",
        headers={"X-Rucio-Auth-Token": rucio_token(rucio_server)},
        timeout=30,
    ).json()
    assert (rule["account"], rule["rse_expression"], rule["name"]) == (
        "physicist",
        "SITE_SCRATCH",
        "ds.ttbar.002",
    )


def test_replica_requests_refused_where_not_enabled(lab):
    r = lab.post("norules/rules", {"scope": "mc23", "name": "ds.ttbar.001", "rse": "SITE_SCRATCH"})
    assert (r.status_code, r.json()) == (
        403,
        error_body(
            403,
            "Replica requests are not enabled for Rucio 'norules' at this facility; "
            "ask your facility's admins.",
        ),
    )
    r = lab.post("test/rules", {"scope": "mc23", "name": "ds.ttbar.001", "rse": "SITE_WEB"})
    assert (r.status_code, r.json()) == (
        403,
        error_body(403, "Replicas may be requested only to SITE_SCRATCH, not to 'SITE_WEB'."),
    )


# --- failures: Rucio down, credentials, auth and XSRF ---------------------------------------


def test_rucio_down_is_a_clear_503(lab):
    r = lab.get("down/dids", scope="mc23", pattern="*")
    assert r.status_code == 503
    instance = next(i for i in lab.get("instances").json()["instances"] if i["name"] == "down")
    assert r.json() == error_body(
        503,
        f"The Rucio server 'down' ({instance['url']}) does not answer (ConnectError). "
        "Try again in a few minutes; if it persists, tell your facility's admins.",
    )


def test_wrong_password_is_401_for_the_admins(lab):
    r = lab.get("badpass/dids", scope="mc23", pattern="*")
    assert (r.status_code, r.json()) == (
        401,
        error_body(
            401,
            "Rucio 'badpass' did not accept the username and password configured for "
            "account 'physicist'. Ask your facility's admins to check the panel's Rucio "
            "settings; nothing in your server needs to change.",
        ),
    )


OIDC_REFUSED = (
    "Rucio 'oidc' did not accept your IAM token (it may have expired). Stop and start your "
    "server from the hub's control panel (File > Hub Control Panel), or log out and in "
    "again, to get a fresh token."
)


def test_token_file_auth_and_expired_token(lab, rucio_server):
    if lab.token_file.exists():
        lab.token_file.unlink()
    r = lab.get("oidc/dids", scope="mc23", pattern="ds.ttbar.*", type="dataset")
    assert r.status_code == 401
    assert r.json()["message"].startswith("No IAM token for Rucio 'oidc'")
    # the token file holds a token Rucio accepts (the keeper rewrites it when it renews)
    lab.token_file.write_text(rucio_token(rucio_server) + "\n")
    r = lab.get("oidc/dids", scope="mc23", pattern="ds.ttbar.*", type="dataset")
    assert r.status_code == 200, r.text
    assert names(r.json()["items"]) == ["ds.ttbar.001", "ds.ttbar.002"]
    lab.token_file.write_text("expired-or-forged-token\n")
    r = lab.get("oidc/dids", scope="mc23", pattern="*")
    assert (r.status_code, r.json()) == (401, error_body(401, OIDC_REFUSED))


def test_unauthenticated_requests_are_refused(lab):
    anonymous = requests.Session()
    r = anonymous.get(lab.api("instances"), timeout=30)
    assert r.status_code == 403
    r = anonymous.post(
        lab.api("test/downloads"),
        json={"scope": "mc23", "name": "ttbar.001.0001.root", "target": "anon.root"},
        timeout=30,
    )
    assert r.status_code == 403
    assert not (lab.home / "anon.root").exists()


def test_post_without_xsrf_is_refused(lab):
    browser = requests.Session()
    # log in as a browser does: the token gives a cookie, then POSTs need the _xsrf token
    page = browser.get(f"{lab.url}/login", timeout=30)
    assert page.status_code == 200
    xsrf = browser.cookies.get("_xsrf")
    r = browser.post(
        f"{lab.url}/login", data={"password": TOKEN, "_xsrf": xsrf}, allow_redirects=False
    )
    assert r.status_code == 302
    assert browser.get(lab.api("instances"), timeout=30).status_code == 200
    body = {"scope": "mc23", "name": "ds.ttbar.001", "rse": "SITE_SCRATCH"}
    r = browser.post(lab.api("test/rules"), json=body, timeout=30)
    assert (r.status_code, r.json()) == (403, error_body(403, "'_xsrf' argument missing from POST"))
    r = browser.post(
        lab.api("test/downloads"),
        json={"scope": "mc23", "name": "ttbar.001.0001.root", "target": "xsrf.root"},
        timeout=30,
    )
    assert r.status_code == 403
    time.sleep(0.3)
    assert not (lab.home / "xsrf.root").exists()
    # with the header, the same session may
    r = browser.post(
        lab.api("test/downloads"),
        json={"scope": "mc23", "name": "ttbar.001.0003.root", "target": "xsrf.root"},
        headers={"X-XSRFToken": browser.cookies.get("_xsrf")},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    assert lab.wait_download(r.json()["id"])["state"] == "done"


def test_the_server_log_holds_no_secret(lab, rucio_server):
    log = lab.process.log.read_text(errors="replace")
    assert rucio_server.password not in log
    assert "expired-or-forged-token" not in log


def test_wrong_settings_are_named_and_the_server_still_runs(tmp_path):
    config = {
        "RucioPanel": {
            "instances": [
                {"name": "atlas", "url": "rucio.example.org", "auth": "oidc", "account": "a"}
            ]
        }
    }
    broken = start_lab(tmp_path / "broken", config)
    try:
        expected = error_body(
            503,
            "The facility's Rucio settings are wrong (RucioPanel.instances[atlas]: "
            "'url' must be an http(s) URL such as https://rucio.example.org); tell your "
            "facility's admins.",
        )
        r = broken.get("instances")
        assert (r.status_code, r.json()) == (503, expected)
        r = broken.get("atlas/dids", scope="mc23")
        assert (r.status_code, r.json()) == (503, expected)
        assert broken.http.get(f"{broken.url}/api/status", timeout=30).status_code == 200
    finally:
        broken.process.stop()
