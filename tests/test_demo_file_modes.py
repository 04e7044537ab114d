"""Files with secrets are their owner's only (issue 15 item 7): the hub-config
toolkit's private_dir / private_file / write_private, the demo's config-time files,
and the modes after `jhub-af demo` has started."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from harness import wait_until

from jhub_af.hub import private_dir, private_file, secret_file, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(path: Path, expected: int) -> None:
    assert path.exists(), f"{path} is missing"
    assert mode(path) == expected, f"{path} is {oct(mode(path))}, not {oct(expected)}"
    assert mode(path) & 0o077 == 0, f"{path} has group/other bits"


@pytest.fixture
def open_umask():
    """A umask that leaves every bit (so a helper relying on it would show)."""
    old = os.umask(0)
    yield
    os.umask(old)


# --- the helpers --------------------------------------------------------------------


def test_a_new_private_dir_is_0700_with_its_parents_made(tmp_path, open_umask):
    d = private_dir(tmp_path / "a" / "b")
    assert d == tmp_path / "a" / "b"
    assert_private(d, 0o700)


def test_an_existing_open_dir_is_tightened_to_0700_and_keeps_its_files(tmp_path):
    d = tmp_path / "data"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    (d / "kept").write_text("x")
    private_dir(d)
    assert_private(d, 0o700)
    assert (d / "kept").read_text() == "x"


def test_private_dir_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(FileExistsError):
        private_dir(tmp_path / "f")


def test_a_new_private_file_is_empty_and_0600(tmp_path, open_umask):
    f = private_file(tmp_path / "ledger.sqlite")
    assert_private(f, 0o600)
    assert f.read_bytes() == b""


def test_an_existing_private_file_keeps_its_content_and_is_tightened(tmp_path):
    f = tmp_path / "ledger.sqlite"
    f.write_bytes(b"SQLite format 3\0...")
    f.chmod(0o644)
    private_file(f)
    assert_private(f, 0o600)
    assert f.read_bytes() == b"SQLite format 3\0..."


def test_write_private_writes_0600(tmp_path, open_umask):
    f = write_private(tmp_path / "af-accounting.json", '{"db_url": "postgresql://u:pw@db/x"}')
    assert_private(f, 0o600)
    assert f.read_text() == '{"db_url": "postgresql://u:pw@db/x"}'


def test_write_private_replaces_an_open_file_atomically(tmp_path):
    f = tmp_path / "af-accounting.json"
    f.write_text("old")
    f.chmod(0o644)
    reader = f.open()  # a reader of the old file keeps reading the old text
    old_inode = f.stat().st_ino
    write_private(f, "new")
    assert f.read_text() == "new"
    assert_private(f, 0o600)
    assert f.stat().st_ino != old_inode  # a new file, moved in one step
    assert reader.read() == "old"
    reader.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["af-accounting.json"]


def test_a_failed_write_private_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    f = tmp_path / "af-accounting.json"
    f.write_text("old")
    with pytest.raises(TypeError):
        write_private(f, 42)  # type: ignore[arg-type]
    assert f.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["af-accounting.json"]


def test_secret_file_tightens_an_old_open_secret_and_keeps_it(tmp_path):
    f = tmp_path / "token"
    f.write_text("abc\n")
    f.chmod(0o644)
    assert secret_file(f) == "abc"
    assert_private(f, 0o600)


def test_a_new_secret_file_is_0600(tmp_path, open_umask):
    assert len(secret_file(tmp_path / "token")) == 64
    assert_private(tmp_path / "token", 0o600)


# --- the demo's config-time files ------------------------------------------------------


def configure_demo(data: Path, login: str = "iam"):
    """The demo's hub config on ``data`` (IAM login: it also makes the crypt key)."""
    from traitlets.config import Config

    from jhub_af.demo import DemoSettings, configure

    secret = data.parent / "client-secret"
    secret.write_text("s3cret\n")
    settings = DemoSettings(
        ip="127.0.0.1",
        port=8000,
        data_dir=str(data),
        hub_port=8081,
        proxy_api_port=8001,
        proxy_command=["configurable-http-proxy"],
        login=login,
        issuer="https://iam.example.org/",
        client_id="demo",
        client_secret_file=str(secret),
        ssh_port=2222,
    )
    c = Config()
    configure(c, settings)
    return c


# the demo's folders that hold secrets, and the secret files its config makes
PRIVATE_DIRS = ("", "home", "accounting", "dask-gateway", "af-ssh")
SECRET_FILES = (
    "jupyterhub.sqlite",
    "accounting/af-accounting.json",
    "accounting/af-accounting.sqlite",
    "accounting/af-spawner-token",
    "dask-gateway/encrypt-key",
    "dask-gateway/dask_gateway_config.py",
    "dask-gateway/dask-gateway.sqlite",
)


def test_the_demo_config_makes_its_secret_files_0600_and_their_dirs_0700(tmp_path):
    data = tmp_path / "data"
    configure_demo(data)
    for d in PRIVATE_DIRS:
        assert_private(data / d, 0o700)
    for f in (*SECRET_FILES, "jupyterhub_crypt_key"):  # the IAM login's key too
        assert_private(data / f, 0o600)


def test_an_old_demo_data_dir_with_open_modes_is_tightened(tmp_path):
    data = tmp_path / "data"
    configure_demo(data, login="demo")
    opened = [data, data / "home", data / "accounting", data / "dask-gateway", data / "af-ssh"]
    for d in opened:
        d.chmod(0o755)
    for f in ("accounting/af-accounting.json", "accounting/af-accounting.sqlite"):
        (data / f).chmod(0o644)
    configure_demo(data, login="demo")
    for d in opened:
        assert_private(d, 0o700)
    assert_private(data / "accounting/af-accounting.json", 0o600)
    assert_private(data / "accounting/af-accounting.sqlite", 0o600)


# --- after `jhub-af demo` has started ---------------------------------------------------


def test_after_the_demo_starts_its_secrets_are_the_owners_only(demo_facility):
    data = demo_facility.workdir / "data"
    for d in PRIVATE_DIRS:
        assert_private(data / d, 0o700)
    for f in (*SECRET_FILES, "demo-settings.json", "jupyterhub_cookie_secret"):
        assert_private(data / f, 0o600)
    host_key = data / "af-ssh" / "ssh_host_ed25519_key"  # af-ssh writes it when it starts
    wait_until(host_key.exists, what="af-ssh's host key")
    assert_private(host_key, 0o600)
