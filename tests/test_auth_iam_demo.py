"""`jhub-af demo --login iam`: its option checks, and the demo against a real IdP."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import free_port, oidc_login, spawn_server, start_demo, start_idp

JHUB_AF = str(Path(sys.executable).parent / "jhub-af")


def demo(*args):
    return subprocess.run([JHUB_AF, "demo", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--login", "iam"], "--login iam needs --issuer, --client-id, --client-secret-file"),
        (
            ["--login", "iam", "--issuer", "https://iam.example.org/", "--client-id", "x"],
            "--login iam needs --client-secret-file",
        ),
        (
            [
                "--login",
                "iam",
                "--issuer",
                "iam.example.org",
                "--client-id",
                "x",
                "--client-secret-file",
                "/etc/hostname",
            ],
            "--issuer 'iam.example.org' is not a URL",
        ),
        (
            [
                "--login",
                "iam",
                "--issuer",
                "https://iam.example.org/",
                "--client-id",
                "x",
                "--client-secret-file",
                "/nonexistent/secret",
            ],
            "Cannot read --client-secret-file /nonexistent/secret: No such file or directory.",
        ),
        (["--login", "ldap"], "argument --login: invalid choice: 'ldap'"),
    ],
    ids=["nothing", "no secret file", "issuer not a URL", "secret file missing", "unknown login"],
)
def test_bad_iam_options_are_refused(args, message, tmp_path):
    r = demo("--port", str(free_port()), "--data-dir", str(tmp_path / "d"), *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert not (tmp_path / "d").exists()


def test_empty_secret_file_is_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("\n")
    r = demo(
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "d"),
        "--login",
        "iam",
        "--issuer",
        "https://iam.example.org/",
        "--client-id",
        "x",
        "--client-secret-file",
        str(secret),
    )
    assert r.returncode == 2
    assert f"--client-secret-file {secret} is empty." in r.stderr


@pytest.mark.integration
def test_demo_signs_in_with_iam_and_notebooks_get_the_token(tmp_path):
    port = free_port()
    idp = start_idp(
        tmp_path / "idp",
        {
            "alice": {
                "sub": "sub-a",
                "preferred_username": "alice",
                "wlcg.groups": ["/atlas", "/atlas/users"],
            }
        },
        [f"http://127.0.0.1:{port}/hub/oauth_callback"],
    )
    secret = tmp_path / "client-secret"
    secret.write_text(idp.client_secret + "\n")
    hub = None
    try:
        hub = start_demo(
            tmp_path / "demo",
            port=port,
            extra_args=[
                "--login",
                "iam",
                "--issuer",
                idp.issuer,
                "--client-id",
                idp.client_id,
                "--client-secret-file",
                str(secret),
            ],
        )
        s = oidc_login(hub.url, "alice")
        me = s.get(f"{hub.url}/hub/api/user", timeout=10).json()
        assert sorted(me["groups"]) == ["/atlas", "/atlas/users"]
        assert spawn_server(s, hub.url, "alice").status_code == 200
        token_file = (
            tmp_path
            / "demo"
            / "data"
            / "home"
            / "alice"
            / ".local"
            / "share"
            / "jupyter"
            / "runtime"
            / "bearer_token"
        )
        deadline = time.monotonic() + 30
        while not token_file.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert token_file.read_text().strip()
        # the secret reached the hub's memory, not the generated config or settings
        data = tmp_path / "demo" / "data"
        for name in ("jupyterhub_config.py", "demo-settings.json"):
            assert idp.client_secret not in (data / name).read_text()
    finally:
        if hub:
            hub.stop()
        idp.stop()
