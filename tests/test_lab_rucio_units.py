"""Table tests of the Data tab's pure parts: config parsing, path confinement, snippets, paging."""

from __future__ import annotations

import asyncio
import json

import pytest
from traitlets.config import Config

from jhub_af.lab.rucio import (
    ConfigError,
    RucioPanel,
    TargetRefused,
    confine_target,
    file_basename,
    parse_instance,
    preferred_pfn,
    take_page,
    uproot_snippet,
)
from jhub_af.lab.rucio.client import did_item
from jhub_af.lab.rucio.redirects import origin, redirect_target, sends_token, storage_url

BASE = {
    "name": "atlas",
    "url": "https://rucio.example.org/",
    "auth": "oidc",
    "account": "{username}",
}


@pytest.mark.parametrize(
    ("id_", "entry", "expect"),
    [
        (
            "oidc-defaults",
            BASE,
            {
                "url": "https://rucio.example.org",
                "auth_url": "https://rucio.example.org",
                "account": "alice",
                "replica_requests": False,
                "destination_rses": (),
            },
        ),
        (
            "userpass-with-auth-url-and-rules",
            {
                **BASE,
                "auth": "userpass",
                "username": "{username}",
                "password": "pw",
                "auth_url": "https://rucio-auth.example.org",
                "replica_requests": True,
                "destination_rses": ["SCRATCH"],
                "vo": "atl",
            },
            {
                "auth_url": "https://rucio-auth.example.org",
                "username": "alice",
                "replica_requests": True,
                "destination_rses": ("SCRATCH",),
                "vo": "atl",
            },
        ),
        (
            "x509",
            {**BASE, "auth": "x509", "proxy_path": "/tmp/x509up_u1000", "account": "prod"},
            {"auth": "x509", "proxy_path": "/tmp/x509up_u1000", "account": "prod"},
        ),
    ],
)
def test_parse_instance_accepts(id_, entry, expect):
    parsed = parse_instance(entry, username="alice")
    for key, value in expect.items():
        assert getattr(parsed, key) == value, key
    public = parsed.public()
    assert set(public) == {"name", "url", "auth", "replica_requests", "destination_rses"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("atlas", "RucioPanel.instances: each entry must be a dict with name, url and auth"),
        (
            {**BASE, "name": "a/b"},
            "RucioPanel.instances: name 'a/b' must be letters, digits, '.', '_' or '-' "
            "(at most 63) and not one of ['downloads', 'instances']",
        ),
        (
            {**BASE, "name": "downloads"},
            "RucioPanel.instances: name 'downloads' must be letters, digits, '.', '_' or '-' "
            "(at most 63) and not one of ['downloads', 'instances']",
        ),
        (
            {**BASE, "url": "rucio.example.org"},
            "RucioPanel.instances[atlas]: 'url' must be an http(s) URL such as "
            "https://rucio.example.org",
        ),
        (
            {**BASE, "auth": "kerberos"},
            "RucioPanel.instances[atlas]: 'auth' must be one of ['oidc', 'userpass', 'x509'], "
            "not 'kerberos'",
        ),
        (
            {**BASE, "account": ""},
            "RucioPanel.instances[atlas]: 'account' is required (the Rucio account, "
            "e.g. '{username}')",
        ),
        (
            {**BASE, "auth": "userpass", "username": "u"},
            "RucioPanel.instances[atlas]: auth 'userpass' needs 'username' and 'password'",
        ),
        (
            {**BASE, "replica_requests": True},
            "RucioPanel.instances[atlas]: 'replica_requests' needs at least one of "
            "'destination_rses'",
        ),
        (
            {**BASE, "replica_requests": "yes", "destination_rses": ["X"]},
            "RucioPanel.instances[atlas]: 'replica_requests' must be true or false",
        ),
        (
            {**BASE, "destination_rses": "SCRATCH"},
            "RucioPanel.instances[atlas]: 'destination_rses' must be a list of RSE names",
        ),
        (
            {**BASE, "pasword": "typo"},
            "RucioPanel.instances[atlas]: unknown key(s) ['pasword']; known keys are "
            "['account', 'allow_insecure_http', 'auth', 'auth_url', 'ca_cert', "
            "'destination_rses', 'name', 'password', 'proxy_path', 'replica_requests', "
            "'token_file', 'url', 'username', 'vo']",
        ),
        (
            {**BASE, "url": "http://rucio.example.org"},
            "RucioPanel.instances[atlas]: 'url' is plain http (http://rucio.example.org), "
            "which would send Rucio tokens and passwords in clear text; use https://, or set "
            "'allow_insecure_http': true on this instance (test setups on a trusted network "
            "only)",
        ),
        (
            {**BASE, "url": "HTTP://rucio.example.org"},
            "RucioPanel.instances[atlas]: 'url' is plain http (HTTP://rucio.example.org), "
            "which would send Rucio tokens and passwords in clear text; use https://, or set "
            "'allow_insecure_http': true on this instance (test setups on a trusted network "
            "only)",
        ),
        (
            {**BASE, "auth_url": "http://rucio-auth.example.org:80"},
            "RucioPanel.instances[atlas]: 'auth_url' is plain http "
            "(http://rucio-auth.example.org:80), which would send Rucio tokens and passwords "
            "in clear text; use https://, or set 'allow_insecure_http': true on this "
            "instance (test setups on a trusted network only)",
        ),
        (
            {**BASE, "url": "http://rucio.example.org", "allow_insecure_http": "yes"},
            "RucioPanel.instances[atlas]: 'allow_insecure_http' must be true or false",
        ),
    ],
)
def test_parse_instance_refuses_with_the_key_named(entry, message):
    with pytest.raises(ConfigError) as e:
        parse_instance(entry, username="alice")
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("entry", "url", "auth_url"),
    [
        # the test harness's Rucio answers on http://127.0.0.1: its entries set this
        (
            {**BASE, "url": "http://127.0.0.1:8080", "allow_insecure_http": True},
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080",
        ),
        (
            {**BASE, "auth_url": "http://auth.test", "allow_insecure_http": True},
            "https://rucio.example.org",
            "http://auth.test",
        ),
        ({**BASE, "allow_insecure_http": False}, "https://rucio.example.org", None),
    ],
)
def test_plain_http_only_with_the_insecure_option(entry, url, auth_url):
    parsed = parse_instance(entry, username="alice")
    assert parsed.url == url
    assert parsed.auth_url == (auth_url or url)
    assert parsed.allow_insecure_http is entry["allow_insecure_http"]
    assert "allow_insecure_http" not in parsed.public()


def test_panel_refuses_a_plain_http_rucio_at_config_time():
    c = Config()
    c.RucioPanel.instances = [{**BASE, "url": "http://rucio.example.org"}]
    with pytest.raises(ConfigError, match=r"^RucioPanel.instances\[atlas\]: 'url' is plain"):
        RucioPanel(config=c)


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("https://Rucio.Example.org/x?y", ("https", "rucio.example.org", 443)),
        ("https://rucio.example.org:443/", ("https", "rucio.example.org", 443)),
        ("http://127.0.0.1:8080/a", ("http", "127.0.0.1", 8080)),
        ("davs://se.example.org/a", ("davs", "se.example.org", 443)),
        ("root://se.example.org//a", ("root", "se.example.org", None)),
        ("https://h:notaport/", ("", "", None)),
    ],
)
def test_origin(url, expect):
    assert origin(url) == expect


@pytest.mark.parametrize(
    ("status", "location", "expect"),
    [
        (302, "/v2/ping", "https://rucio.test/v2/ping"),
        (307, "https://other.test:8443/x", "https://other.test:8443/x"),
        (301, "//other.test/x", "https://other.test/x"),
        (308, "ping2", "https://rucio.test/api/ping2"),
        (303, "http://rucio.test/x", "http://rucio.test/x"),
        (200, "/elsewhere", None),
        (302, None, None),
        (304, "/x", None),
    ],
)
def test_redirect_target(status, location, expect):
    assert redirect_target(status, location, "https://rucio.test/api/ping") == expect


@pytest.mark.parametrize(
    ("hop", "pfn", "sends"),
    [
        ("https://se.test/data/f", "https://se.test/data/f", True),
        ("https://se.test:443/other", "https://se.test/data/f", True),
        ("https://pool.se.test/data/f?authz=x", "https://se.test/data/f", False),
        ("https://se.test:8443/data/f", "https://se.test/data/f", False),
        ("http://se.test/data/f", "http://se.test/data/f", False),
        ("http://se.test:443/data/f", "https://se.test/data/f", False),
        (storage_url("davs://se.test/data/f"), storage_url("davs://se.test/data/f"), True),
    ],
)
def test_the_storage_token_goes_only_over_https_to_the_pfns_host(hop, pfn, sends):
    assert sends_token(hop, pfn) is sends


def test_panel_refuses_duplicate_names_and_defaults_to_root_dir(tmp_path):
    c = Config()
    c.RucioPanel.instances = [BASE, BASE]
    with pytest.raises(ConfigError, match="the name 'atlas' is used twice"):
        RucioPanel(config=c)
    panel = RucioPanel(config=Config({"RucioPanel": {"instances": [BASE]}}))
    assert list(panel.parsed_instances("bob")) == ["atlas"]
    assert panel.parsed_instances("bob")["atlas"].account == "bob"
    assert panel.page_size == 100 and panel.max_page_size == 1000


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    (home / "existing.root").write_bytes(b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "escape").symlink_to(outside)
    (home / "inside-link").symlink_to(home / "data")
    (home / "file-link").symlink_to(outside / "f.root")
    return home


@pytest.mark.parametrize(
    ("target", "did", "expect"),
    [
        ("a.root", "x.root", "a.root"),
        ("data/a.root", "x.root", "data/a.root"),
        ("new/deeper/a.root", "x.root", "new/deeper/a.root"),
        ("data/", "mc23.x.root", "data/mc23.x.root"),
        ("data", "x.root", "data/x.root"),
        ("./data/./b.root", "x.root", "data/b.root"),
        ("inside-link/c.root", "x.root", "data/c.root"),
        ("data/", "<svg/onload=alert(1)>.file", "data/onload=alert(1)>.file"),
    ],
)
def test_confine_target_inside_home(home, target, did, expect):
    assert confine_target(home, target, did) == home.resolve() / expect


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("", "Give a target path relative to your home, e.g. data/file.root."),
        ("   ", "Give a target path relative to your home, e.g. data/file.root."),
        (
            "/etc/passwd",
            "The target '/etc/passwd' is absolute; give a path relative to your home, "
            "e.g. data/file.root.",
        ),
        (
            "~/x.root",
            "The target '~/x.root' is absolute; give a path relative to your home, "
            "e.g. data/file.root.",
        ),
        (
            "../x.root",
            "The target '../x.root' contains '..'; give a path inside your home, "
            "e.g. data/file.root.",
        ),
        (
            "data/../../x",
            "The target 'data/../../x' contains '..'; give a path inside your home, "
            "e.g. data/file.root.",
        ),
        (
            "data\\..\\..\\x",
            "The target 'data\\\\..\\\\..\\\\x' contains '..'; give a path inside your home, "
            "e.g. data/file.root.",
        ),
        ("a\x00b", "The target path contains a NUL byte; use an ordinary file name."),
        (
            "escape/x.root",
            "The target 'escape/x.root' leads outside your home through a symbolic link; "
            "choose a folder inside your home.",
        ),
        (
            "file-link",
            "The target 'file-link' leads outside your home through a symbolic link; "
            "choose a folder inside your home.",
        ),
        (
            "existing.root",
            "'existing.root' exists already; choose another name or delete it first.",
        ),
    ],
)
def test_confine_target_refuses(home, target, message):
    with pytest.raises(TargetRefused) as e:
        confine_target(home, target, "x.root")
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("name", "expect"),
    [("a.root", "a.root"), ("dir/sub/a.root", "a.root"), ("..", "rucio-file"), ("x/", "x")],
)
def test_file_basename(name, expect):
    assert file_basename(name) == expect


@pytest.mark.parametrize(
    ("pfns", "expect"),
    [
        (["file:///d/a", "https://h/a", "root://h//a"], "root://h//a"),
        (["file:///d/a", "https://h/a"], "https://h/a"),
        (["davs://h/a", "file:///d/a"], "davs://h/a"),
        (["file:///d/a"], "file:///d/a"),
        (["srm://h/a"], None),
        ([], None),
    ],
)
def test_preferred_pfn(pfns, expect):
    assert preferred_pfn(pfns) == expect


@pytest.mark.parametrize(
    ("pfn", "opens", "comment"),
    [
        ("root://eos.example.org//eos/a.root", "root://eos.example.org//eos/a.root", "XRootD"),
        ("https://web.example.org/a.root", "https://web.example.org/a.root", "HTTPS"),
        ("file:///data/a.root", "/data/a.root", "local path"),
        ('https://h/a".root', 'https://h/a".root', "HTTPS"),
    ],
)
def test_uproot_snippet(pfn, opens, comment):
    code = uproot_snippet("mc23", 'odd"name\nprint(1)', pfn)
    compile(code, "snippet", "exec")
    assert f"uproot.open({json.dumps(opens)})" in code
    assert comment in code
    # the name is one JSON string literal: no line of code comes from it
    assert 'did = "mc23:odd\\"name\\nprint(1)"' in code
    assert "\nprint(1)" not in code


def test_take_page_stops_reading_after_the_page():
    pulled, closed = [], []

    async def stream(n):
        try:
            for i in range(n):
                pulled.append(i)
                yield {"i": i}
        finally:
            closed.append(True)

    items, more = asyncio.run(take_page(stream(100_000), 0, 100))
    assert ([x["i"] for x in items], more) == (list(range(100)), True)
    assert len(pulled) == 101 and closed == [True]
    pulled.clear()
    items, more = asyncio.run(take_page(stream(250), 2, 100))
    assert ([x["i"] for x in items], more) == (list(range(200, 250)), False)
    assert len(pulled) == 250


@pytest.mark.parametrize(
    ("row", "expect"),
    [
        (
            {"scope": "s", "name": "n", "did_type": "DATASET", "bytes": None, "length": 3},
            {"scope": "s", "name": "n", "type": "dataset", "bytes": None, "events": None},
        ),
        (
            {"scope": "s", "name": "f", "type": "FILE", "bytes": 10, "events": 7},
            {"scope": "s", "name": "f", "type": "file", "bytes": 10, "events": 7},
        ),
        (
            {"scope": "s", "name": "f", "bytes": 10, "adler32": "1"},
            {"scope": "s", "name": "f", "type": "file", "bytes": 10, "events": None},
        ),
    ],
)
def test_did_item(row, expect):
    assert did_item(row) == expect
