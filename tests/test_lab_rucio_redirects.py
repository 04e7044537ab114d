"""The user's token goes only to the configured Rucio, and to storage only over TLS.

The attack, performed for real: a real ``jupyter server`` with jhub_af.lab talks to a
fake Rucio (an HTTP listener on 127.0.0.1 in this process) that answers with a
redirect to a second listener on another address (127.0.0.2) or port; every listener
records the headers it got. The panel must refuse the hop before it sends anything
there, and answer a sentence naming the host. Downloads: an ``http://`` PFN is read
without the token, and a storage's redirect to another host gets no credentials,
while same-host redirects keep working.

The fake Rucio is plain http on loopback, so its instances set ``allow_insecure_http``
(without it the panel refuses the URL at config time: tests/test_lab_rucio_units.py).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from harness import start_jupyter_server

from jhub_af.lab.api import error_body

pytestmark = pytest.mark.integration

SERVER_TOKEN = "redirects-test-server-token"
IAM_TOKEN = "iam-access-token-that-must-stay-home-5f1c"
PASSWORD = "rucio-password-that-must-stay-home-9a2e"
CONTENT = b"root file bytes " * 4096


class Recorder(BaseHTTPRequestHandler):
    """Records every request's method, path and headers, and answers from ``routes``:
    ``(method, path) -> (status, headers, body)`` or a function of the request."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer()

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.records.append({"method": self.command, "path": path, "headers": headers})
        route = self.server.routes.get((self.command, path), (404, {}, b""))
        status, out_headers, payload = route(headers, body) if callable(route) else route
        self.send_response(status)
        for key, value in out_headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class Listener(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int = 0, tls: ssl.SSLContext | None = None):
        super().__init__((host, port), Recorder)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.records: list[dict] = []
        self.routes: dict = {}
        self.pfn = ""
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def reset(self) -> None:
        self.records.clear()
        self.routes.clear()

    def header_values(self) -> list[str]:
        return [v for r in self.records for v in r["headers"].values()]


def _certificate(work: Path) -> tuple[Path, Path]:
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,IP:127.0.0.2"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return cert, key


class Site:
    """The fake Rucio, the hosts it redirects to, the storages, and the lab using them."""

    def __init__(self, work: Path):
        self.cert, key = _certificate(work)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self.cert, key)
        self.rucio = Listener("127.0.0.1")
        self.listeners = {
            "rucio": self.rucio,
            # another address, same port: only the host differs
            "other_address": Listener("127.0.0.2", self.rucio.server_address[1]),
            # same address, another port
            "other_port": Listener("127.0.0.1"),
            "plain_storage": Listener("127.0.0.2"),
            "tls_storage": Listener("127.0.0.1", tls=tls),
            "tls_pool": Listener("127.0.0.2", tls=tls),
        }
        self.home = work / "home"
        self.home.mkdir()
        (work / "bearer_token").write_text(IAM_TOKEN + "\n")
        common = {
            "url": self.rucio.origin,
            "account": "alice",
            "ca_cert": str(self.cert),
            # the fake Rucio is plain http on loopback: a test setup
            "allow_insecure_http": True,
        }
        config = {
            "IdentityProvider": {"token": SERVER_TOKEN},
            "RucioPanel": {
                "instances": [
                    {
                        "name": "fake",
                        "auth": "oidc",
                        "token_file": str(work / "bearer_token"),
                        **common,
                    },
                    {
                        "name": "fakepass",
                        "auth": "userpass",
                        "username": "alice",
                        "password": PASSWORD,
                        **common,
                    },
                ]
            },
        }
        self.server = start_jupyter_server(
            work, {"jupyter_server_config.json": json.dumps(config)}, root_dir=self.home
        )
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {SERVER_TOKEN}"

    def get(self, path: str, **params) -> requests.Response:
        return self.http.get(f"{self.server.url}/jhub-af/rucio/{path}", params=params, timeout=120)

    def download(self, pfn: str, target: str, timeout: float = 60) -> dict:
        """Rucio lists ``pfn`` as the file's only replica; the panel downloads it."""
        self.rucio.pfn = pfn
        r = self.http.post(
            f"{self.server.url}/jhub-af/rucio/fake/downloads",
            json={"scope": "mc23", "name": "f.root", "target": target},
            timeout=120,
        )
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.get(f"downloads/{r.json()['id']}").json()
            if state["state"] != "running":
                return state
            time.sleep(0.1)
        raise TimeoutError(f"download of {pfn} still running")

    def default_rucio_routes(self) -> None:
        json_stream = {"Content-Type": "application/x-json-stream"}
        did = {"scope": "mc23", "name": "ds.a", "did_type": "DATASET", "bytes": None}
        file_did = {"scope": "mc23", "name": "f.root", "type": "FILE", "bytes": len(CONTENT)}
        self.rucio.routes.update(
            {
                ("GET", "/auth/userpass"): (200, {"X-Rucio-Auth-Token": "rucio-token"}, b""),
                ("GET", "/dids/mc23/dids/search"): (200, json_stream, _line(did)),
                ("GET", "/dids/mc23/f.root"): (200, {}, json.dumps(file_did).encode()),
                ("POST", "/replicas/list"): lambda headers, body: (
                    200,
                    json_stream,
                    _line({"scope": "mc23", "name": "f.root", "rses": {"WEB": [self.rucio.pfn]}}),
                ),
            }
        )

    def stop(self) -> None:
        self.server.stop()
        for listener in self.listeners.values():
            listener.shutdown()
            listener.server_close()


def _line(row: dict) -> bytes:
    return json.dumps(row).encode() + b"\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp("lab-rucio-redirects"))
    yield site
    site.stop()


@pytest.fixture
def fake(site):
    for listener in site.listeners.values():
        listener.reset()
    site.default_rucio_routes()
    return site


def refused(site: Site, instance: str, target: str) -> dict:
    return error_body(
        502,
        f"Rucio '{instance}' sent the panel to another host, {target}, instead of answering "
        f"from {site.rucio.origin}; the panel sends your credentials only to the configured "
        "Rucio, so it stopped there. Tell your facility's admins (if Rucio moved, its 'url' "
        "or 'auth_url' in RucioPanel.instances must say so).",
    )


# --- requests to Rucio -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "where"), [(302, "other_address"), (307, "other_address"), (308, "other_port")]
)
def test_a_redirect_to_another_host_is_refused_and_gets_no_token(fake, status, where):
    other = fake.listeners[where]
    other.routes[("GET", "/dids/mc23/dids/search")] = (200, {}, b"")
    fake.rucio.routes[("GET", "/dids/mc23/dids/search")] = (
        status,
        {"Location": f"{other.origin}/dids/mc23/dids/search?type=all"},
        b"",
    )
    r = fake.get("fake/dids", scope="mc23", pattern="*")
    assert (r.status_code, r.json()) == (502, refused(fake, "fake", other.origin))
    # the token went to the configured Rucio, and nothing at all to the other host
    assert fake.rucio.records[0]["headers"]["x-rucio-auth-token"] == IAM_TOKEN
    assert other.records == []
    for name, listener in fake.listeners.items():
        if name != "rucio":
            assert not any(IAM_TOKEN in v for v in listener.header_values()), name


def test_the_password_never_follows_a_redirect_of_the_auth_server(fake):
    other = fake.listeners["other_address"]
    fake.rucio.routes[("GET", "/auth/userpass")] = (
        307,
        {"Location": f"{other.origin}/auth/userpass"},
        b"",
    )
    r = fake.get("fakepass/dids", scope="mc23", pattern="*")
    assert (r.status_code, r.json()) == (502, refused(fake, "fakepass", other.origin))
    assert fake.rucio.records[0]["headers"]["x-rucio-password"] == PASSWORD
    assert other.records == []


def test_a_same_host_redirect_still_works_with_the_token(fake):
    fake.rucio.routes[("GET", "/moved/search")] = fake.rucio.routes[
        ("GET", "/dids/mc23/dids/search")
    ]
    fake.rucio.routes[("GET", "/dids/mc23/dids/search")] = (
        302,
        {"Location": "/moved/search"},
        b"",
    )
    r = fake.get("fake/dids", scope="mc23", pattern="*")
    assert r.status_code == 200, r.text
    assert [i["name"] for i in r.json()["items"]] == ["ds.a"]
    assert [x["path"] for x in fake.rucio.records] == ["/dids/mc23/dids/search", "/moved/search"]
    assert all(x["headers"]["x-rucio-auth-token"] == IAM_TOKEN for x in fake.rucio.records)


# --- downloads -------------------------------------------------------------------------


def _no_token_reached(listener: Listener) -> None:
    assert listener.records, "the storage was never asked"
    assert all("authorization" not in x["headers"] for x in listener.records)
    assert not any(IAM_TOKEN in v for v in listener.header_values())


def test_an_http_pfn_is_read_without_the_token(fake):
    storage = fake.listeners["plain_storage"]
    storage.routes[("GET", "/data/f.root")] = (200, {}, CONTENT)
    state = fake.download(f"{storage.origin}/data/f.root", "dl/plain.root")
    assert (state["state"], state["bytes_done"]) == ("done", len(CONTENT)), state
    assert (fake.home / "dl" / "plain.root").read_bytes() == CONTENT
    _no_token_reached(storage)


def test_an_http_pfn_that_wants_credentials_fails_with_a_sentence_and_no_token(fake):
    storage = fake.listeners["plain_storage"]
    storage.routes[("GET", "/data/f.root")] = (401, {}, b"")
    pfn = f"{storage.origin}/data/f.root"
    state = fake.download(pfn, "dl/refused.root")
    assert state["state"] == "failed"
    assert state["error"] == (
        f"The storage at {storage.origin} refused to send {pfn} (401) without credentials; "
        "the panel sends your token only over https to the replica's own host. Pick an "
        "https:// or davs:// replica, or open the file with the snippet."
    )
    assert not (fake.home / "dl" / "refused.root").exists()
    _no_token_reached(storage)


def test_a_storage_redirect_to_another_host_gets_no_token(fake):
    door, pool = fake.listeners["tls_storage"], fake.listeners["tls_pool"]
    door.routes[("GET", "/data/f.root")] = (
        307,
        {"Location": f"{pool.origin}/pool/f.root?authz=one-time-capability"},
        b"",
    )
    pool.routes[("GET", "/pool/f.root")] = (200, {}, CONTENT)
    state = fake.download(f"{door.origin}/data/f.root", "dl/pooled.root")
    assert state["state"] == "done", state
    assert (fake.home / "dl" / "pooled.root").read_bytes() == CONTENT
    # the PFN's own host over https got the token; the pool it redirected to did not
    assert [x["headers"].get("authorization") for x in door.records] == [f"Bearer {IAM_TOKEN}"]
    _no_token_reached(pool)


def test_a_davs_pfn_keeps_its_token_through_a_same_host_redirect(fake):
    door = fake.listeners["tls_storage"]
    door.routes[("GET", "/data/f.root")] = (302, {"Location": "/data2/f.root"}, b"")
    door.routes[("GET", "/data2/f.root")] = lambda headers, body: (
        (200, {}, CONTENT)
        if headers.get("authorization") == f"Bearer {IAM_TOKEN}"
        else (401, {}, b"")
    )
    state = fake.download(f"davs://127.0.0.1:{door.server_address[1]}/data/f.root", "dl/davs.root")
    assert state["state"] == "done", state
    assert [x["path"] for x in door.records] == ["/data/f.root", "/data2/f.root"]


def test_the_server_log_holds_no_token(site):
    log = site.server.process.log.read_text(errors="replace")
    assert IAM_TOKEN not in log and PASSWORD not in log
