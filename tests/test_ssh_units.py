"""af-ssh's own parts: login names, failure limits, the login decision against a fake hub,
the hub config, and the SFTP guard on real files."""

from __future__ import annotations

import asyncio
import logging
import os
import struct

import pytest

from jhub_af.lab.sftp_guard import (
    CLOSE,
    EXTENDED,
    FX_OK,
    FX_OP_UNSUPPORTED,
    FX_PERMISSION_DENIED,
    HANDLE,
    OPEN,
    PF_CREAT,
    PF_READ,
    PF_TRUNC,
    PF_WRITE,
    READ,
    REMOVE,
    RENAME,
    STAT,
    STATUS,
    SYMLINK,
    PathTurn,
    SFTPGuard,
)
from jhub_af.ssh import BadLoginName, LoginName, parse_login, ssh_hub_config
from jhub_af.ssh.limits import SourceLimiter
from jhub_af.ssh.login import LoginChecker, LoginRefused
from jhub_af.ssh.names import shown


@pytest.mark.parametrize(
    ("login", "expected"),
    [
        ("alice", LoginName("alice")),
        ("alice+large", LoginName("alice", "large")),
        ("a.b-c_d@x.org", LoginName("a.b-c_d@x.org")),
        ("bob+t4", LoginName("bob", "t4")),
    ],
)
def test_login_names_accepted(login, expected):
    assert parse_login(login) == expected


@pytest.mark.parametrize(
    "login",
    [
        "",
        "Alice",  # hub names are lower case
        "alice;id",
        "../alice",
        "al ice",
        "alice\x00",
        "alice\n",
        "ålice",
        "-alice",
        "a" * 65,
        "alice+",
        "alice+Large",
        "alice+large+gpu",
        "alice+../x",
        "alice+-x",
        "${IFS}",
    ],
)
def test_odd_login_names_refused(login):
    with pytest.raises(BadLoginName):
        parse_login(login)


def test_shown_names_are_printable_and_short():
    text = shown("alice\x1b[31m\n" + "x" * 100)
    assert text.isprintable() and "\x1b" not in text and len(text) < 80


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_source_is_rate_limited_after_max_failures_within_the_window_then_freed():
    clock = Clock()
    limiter = SourceLimiter(max_failures=3, window=10, max_sources=100, clock=clock)
    assert not limiter.failed("10.0.0.1") and not limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 0 and limiter.turn("10.0.0.1") is None
    clock.now += 4
    assert limiter.failed("10.0.0.1")  # the third one limits (said once)
    assert limiter.retry_after("10.0.0.1") == 6  # when the first of the three is 10 s old
    assert limiter.turn("10.0.0.1") is not None
    assert limiter.retry_after("10.0.0.2") == 0  # others are not limited
    clock.now += 2
    assert not limiter.failed("10.0.0.1")  # still limited: not said again
    # the last three (at 1000, 1004, 1006): limited until the one at 1000 is 10 s old
    assert limiter.retry_after("10.0.0.1") == 4
    clock.now += 4
    assert limiter.retry_after("10.0.0.1") == 0 and limiter.turn("10.0.0.1") is None


def test_failures_outside_the_window_do_not_count():
    clock = Clock()
    limiter = SourceLimiter(max_failures=3, window=10, max_sources=100, clock=clock)
    limiter.failed("10.0.0.1")
    limiter.failed("10.0.0.1")
    clock.now += 11
    assert not limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 0


def test_the_limiter_memory_is_bounded_whatever_is_sent():
    clock = Clock()
    limiter = SourceLimiter(max_failures=5, window=300, max_sources=100, clock=clock)
    for i in range(100_000):  # a flood from many addresses
        limiter.failed(f"2001:db8::{i:x}")
        clock.now += 0.001
    assert len(limiter) == 100
    # the most recent sources are kept, the oldest forgotten
    assert limiter.retry_after("2001:db8::1") == 0
    for _ in range(10_000):  # a flood from one address keeps only its last 5 times
        limiter.failed("10.0.0.1")
    assert len(limiter) == 100
    assert len(limiter._sources["10.0.0.1"].failures) == 5
    assert limiter.retry_after("10.0.0.1") > 0


# -- the login decision, against a fake hub

TOKENS = {
    # token -> GET /hub/api/user as the hub answers it
    "a" * 32: {  # from the token page: the user's scopes, with the SSH scope
        "kind": "user",
        "name": "alice",
        "scopes": ["custom:jhub-af:ssh!user=alice", "access:servers!user=alice"],
    },
    "s" * 32: {  # alice's server's own token (the server role)
        "kind": "user",
        "name": "alice",
        "scopes": ["access:servers!server=alice/", "users:activity!user=alice"],
    },
    "r" * 32: {"kind": "user", "name": "alice", "scopes": ["read:users:name!user=alice"]},
}


class FakeHub:
    def __init__(self):
        self.asked = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def identify(self, token):
        self.asked += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.001)
        self.in_flight -= 1
        return TOKENS.get(token)


def _checker(max_failures=3):
    hub = FakeHub()
    checker = LoginChecker(
        hub,
        SourceLimiter(max_failures, 300, 100),
        allow_admin_access=False,
        service_token="",
        token_page="https://hub.example.org/hub/token",
        log=logging.getLogger("test"),
    )
    return checker, hub


async def test_a_valid_token_logs_in_from_a_rate_limited_source():
    checker, _ = _checker()
    for _ in range(2):
        assert await checker.check("10.0.0.50", "alice", "x" * 32) is None
    with pytest.raises(LoginRefused, match=r"rate-limited for 300 more seconds"):
        await checker.check("10.0.0.50", "alice", "x" * 32)
    login = await checker.check("10.0.0.50", "alice", "a" * 32)
    assert login.name.user == "alice" and login.server_token == "a" * 32
    # and from elsewhere, for the same name
    assert (await checker.check("10.0.0.51", "alice", "a" * 32)).owner == "alice"


async def test_a_rate_limited_source_is_told_how_long_and_what_to_do():
    checker, _ = _checker(max_failures=1)
    with pytest.raises(LoginRefused) as refused:
        await checker.check("10.0.0.50", "bob", "x" * 32)
    sentence = str(refused.value)
    assert sentence.startswith("af-ssh: too many failed logins from your address (10.0.0.50)")
    assert "rate-limited for 300 more seconds" in sentence
    assert "https://hub.example.org/hub/token" in sentence
    assert len(sentence) < 400 and "\n" not in sentence  # OpenSSH prints 400 characters


async def test_a_rate_limited_source_is_checked_one_login_at_a_time():
    checker, hub = _checker(max_failures=1)
    with pytest.raises(LoginRefused):
        await checker.check("10.0.0.50", "bob", "x" * 32)
    results = await asyncio.gather(
        *[checker.check("10.0.0.50", "bob", "x" * 32) for _ in range(50)],
        checker.check("10.0.0.50", "alice", "a" * 32),
        return_exceptions=True,
    )
    assert all(isinstance(r, LoginRefused) for r in results[:-1])
    assert results[-1].owner == "alice"
    assert hub.most_in_flight == 1
    # other sources are not held up by it
    hub.most_in_flight = 0
    await asyncio.gather(*[checker.check(f"10.0.1.{i}", "alice", "a" * 32) for i in range(5)])
    assert hub.most_in_flight == 5


@pytest.mark.parametrize("token", ["s" * 32, "r" * 32], ids=["server token", "read-only"])
async def test_a_token_without_the_ssh_scope_is_refused_with_where_to_make_one(token):
    checker, _ = _checker(max_failures=10)
    with pytest.raises(LoginRefused) as refused:
        await checker.check("10.0.0.60", "alice", token)
    assert str(refused.value) == (
        "af-ssh: this token is not meant for SSH (it lacks custom:jhub-af:ssh). Make a "
        "new token on the hub's token page, https://hub.example.org/hub/token, keeping "
        "its default permissions, and log in with that one."
    )


def test_the_hub_config_gives_the_ssh_scope_to_users_not_to_servers():
    from traitlets.config import Config

    c = Config()
    c.JupyterHub.custom_scopes = {"custom:other": {"description": "kept"}}
    roles = ssh_hub_config(c)
    assert set(c.JupyterHub.custom_scopes) == {"custom:other", "custom:jhub-af:ssh"}
    assert c.JupyterHub.custom_scopes["custom:jhub-af:ssh"]["description"]
    assert roles == [{"name": "user", "scopes": ["self", "custom:jhub-af:ssh!user"]}]


# -- the SFTP guard, on real files in a temporary home


def _s(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _req(kind: int, rid: int, body: bytes) -> bytes:
    payload = bytes([kind]) + struct.pack(">I", rid) + body
    return struct.pack(">I", len(payload)) + payload


def _packets(buf: bytes) -> list[bytes]:
    out = []
    while buf:
        n = 4 + struct.unpack_from(">I", buf)[0]
        out, buf = [*out, buf[:n]], buf[n:]
    return out


def _status_code(packet: bytes) -> int:
    assert packet[4] == STATUS
    return struct.unpack_from(">I", packet, 9)[0]


def _guard(home, turn=None) -> SFTPGuard:
    """A guard with a turn of its own, so that tests do not wait for each other."""
    return SFTPGuard(str(home), turn=turn or PathTurn())


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home" / "alice"
    home.mkdir(parents=True)
    (tmp_path / "home" / "bob").mkdir()
    (tmp_path / "secret").write_text("not alice's")
    os.symlink(tmp_path / "secret", home / "link-out")
    os.symlink(tmp_path / "home" / "bob", home / "bob-dir")
    (home / "data").mkdir()
    return home


@pytest.mark.parametrize(
    "path",
    [
        b"../bob/x",
        b"/etc/passwd",
        b"data/../../bob",
        b"link-out",
        b"bob-dir/x",
        b"./../../secret",
        b"data\x00/x",
    ],
)
def test_guard_refuses_paths_outside_the_home(home, path):
    guard = _guard(home)
    forward, answer = guard.from_client(_req(STAT, 7, _s(path)))
    assert forward == b""
    assert _status_code(answer) == FX_PERMISSION_DENIED
    assert struct.unpack_from(">I", answer, 5)[0] == 7  # the request's id


@pytest.mark.parametrize("path", [b".", b"data", b"data/../data/x", "ü.txt".encode()])
def test_guard_passes_paths_inside_the_home(home, path):
    guard = _guard(home)
    packet = _req(STAT, 1, _s(path))
    assert guard.from_client(packet) == (packet, b"")


def test_guard_checks_both_paths_of_rename_and_symlink(home):
    guard = _guard(home)
    for kind in (RENAME, SYMLINK):
        forward, answer = guard.from_client(_req(kind, 3, _s(b"data") + _s(b"../../secret2")))
        assert forward == b"" and _status_code(answer) == FX_PERMISSION_DENIED
        forward, answer = guard.from_client(_req(kind, 4, _s(b"/tmp/x") + _s(b"data/y")))
        assert forward == b"" and _status_code(answer) == FX_PERMISSION_DENIED


def test_guard_refuses_unknown_extensions_and_checks_known_ones(home):
    guard = _guard(home)
    _, answer = guard.from_client(_req(EXTENDED, 5, _s(b"evil@example.org") + _s(b"x")))
    assert _status_code(answer) == FX_OP_UNSUPPORTED
    body = _s(b"posix-rename@openssh.com") + _s(b"data") + _s(b"../escape")
    _, answer = guard.from_client(_req(EXTENDED, 6, body))
    assert _status_code(answer) == FX_PERMISSION_DENIED


def test_guard_handles_packets_split_across_reads(home):
    guard = _guard(home)
    packet = _req(STAT, 9, _s(b"../bob"))
    forward1, answer1 = guard.from_client(packet[:6])
    assert (forward1, answer1) == (b"", b"")
    forward2, answer2 = guard.from_client(packet[6:] + _req(STAT, 10, _s(b"data")))
    assert _status_code(answer2) == FX_PERMISSION_DENIED
    assert forward2 == _req(STAT, 10, _s(b"data"))


def _open_for_upload(guard, rid: int, path: bytes) -> str:
    flags = struct.pack(">II", PF_WRITE | PF_CREAT | PF_TRUNC, 0)
    forward, answer = guard.from_client(_req(OPEN, rid, _s(path) + flags))
    assert answer == b""
    temp = forward[13 : 13 + struct.unpack_from(">I", forward, 9)[0]].decode()
    assert forward[4] == OPEN and temp != path.decode()
    return temp


def _handle_reply(rid: int, handle: bytes) -> bytes:
    payload = bytes([HANDLE]) + struct.pack(">I", rid) + _s(handle)
    return struct.pack(">I", len(payload)) + payload


def _status_reply(rid: int, code: int) -> bytes:
    payload = bytes([STATUS]) + struct.pack(">II", rid, code) + _s(b"") + _s(b"")
    return struct.pack(">I", len(payload)) + payload


def test_guard_uploads_land_under_their_name_only_when_closed(home):
    (home / "data" / "result.root").write_bytes(b"the old, complete file")
    guard = _guard(home)
    temp = _open_for_upload(guard, 1, b"data/result.root")
    assert os.path.dirname(temp) == str(home / "data")
    guard.from_server(_handle_reply(1, b"H1"))
    with open(temp, "wb") as f:  # what sftp-server would write
        f.write(b"new bytes")
    assert (home / "data" / "result.root").read_bytes() == b"the old, complete file"
    guard.from_client(_req(CLOSE, 2, _s(b"H1")))
    reply, _ = guard.from_server(_status_reply(2, FX_OK))
    assert _status_code(reply) == FX_OK
    assert (home / "data" / "result.root").read_bytes() == b"new bytes"
    assert not os.path.exists(temp)


def test_guard_removes_an_unfinished_upload_and_keeps_the_old_file(home):
    (home / "data" / "result.root").write_bytes(b"the old, complete file")
    guard = _guard(home)
    temp = _open_for_upload(guard, 1, b"data/result.root")
    guard.from_server(_handle_reply(1, b"H1"))
    with open(temp, "wb") as f:
        f.write(b"half of it")
    guard.abort()  # the client went away before closing
    assert not os.path.exists(temp)
    assert (home / "data" / "result.root").read_bytes() == b"the old, complete file"
    assert sorted(p.name for p in (home / "data").iterdir()) == ["result.root"]


def test_guard_leaves_reads_alone_and_holds_the_next_path_until_the_last_is_answered(home):
    guard = _guard(home)
    flags = struct.pack(">II", PF_READ, 0)
    packet = _req(OPEN, 1, _s(b"data/x") + flags)
    assert guard.from_client(packet) == (packet, b"")
    remove = _req(REMOVE, 2, _s(b"data/x"))
    read = _req(READ, 3, _s(b"H1") + struct.pack(">QI", 0, 4096))
    assert guard.from_client(remove) == (b"", b"")  # OPEN 1 is still in flight
    assert guard.from_client(read) == (b"", b"")  # keeps its place behind REMOVE 2
    assert guard.from_server(_handle_reply(1, b"H1")) == (_handle_reply(1, b"H1"), remove + read)
    stat = _req(STAT, 4, _s(b"data"))
    read2 = _req(READ, 5, _s(b"H1") + struct.pack(">QI", 4096, 4096))
    assert guard.from_client(read2) == (read2, b"")  # on a handle: no wait
    assert guard.from_client(stat) == (b"", b"")
    assert guard.from_server(_status_reply(2, FX_OK))[1] == stat


def test_guard_resolves_a_held_path_when_it_goes_not_when_it_arrives(home):
    guard = _guard(home)
    (home / "q").mkdir()
    (home / "q" / "f").write_text("mine")
    remove = _req(REMOVE, 1, _s(b"q/f"))
    assert guard.from_client(remove) == (remove, b"")
    forward, answer = guard.from_client(_req(STAT, 2, _s(b"q/f")))
    assert (forward, answer) == (b"", b"")
    (home / "q" / "f").unlink()  # what REMOVE 1 did; then something made q point out
    (home / "q").rmdir()
    os.symlink(home.parent.parent / "secret", home / "q")
    to_client, forward = guard.from_server(_status_reply(1, FX_OK))
    assert forward == b""  # STAT 2 was checked now, through the new link, and refused
    assert [_status_code(p) for p in _packets(to_client)] == [FX_OK, FX_PERMISSION_DENIED]


def test_another_session_waits_for_the_turn_and_is_woken(home):
    turn = PathTurn()
    first, second = _guard(home, turn), _guard(home, turn)
    woken = []
    second.wake = lambda: woken.append(True)
    stat1, stat2 = _req(STAT, 1, _s(b"data")), _req(STAT, 1, _s(b"."))
    assert first.from_client(stat1) == (stat1, b"")
    assert second.from_client(stat2) == (b"", b"")
    assert not woken
    first.from_server(_status_reply(1, FX_OK))
    assert woken and second.pending() == (stat2, b"")
    assert first.from_client(_req(STAT, 2, _s(b"data"))) == (b"", b"")  # now in line
    second.abort()  # a session that ends passes the turn on
    assert turn.holder is first


def test_guard_refuses_a_repeated_request_id_and_unknown_requests(home):
    guard = _guard(home)
    stat = _req(STAT, 1, _s(b"data"))
    assert guard.from_client(stat) == (stat, b"")
    forward, answer = guard.from_client(_req(READ, 1, _s(b"H") + struct.pack(">QI", 0, 1)))
    assert forward == b"" and _status_code(answer) == 5  # bad message
    forward, answer = guard.from_client(_req(60, 2, b""))
    assert forward == b"" and _status_code(answer) == FX_OP_UNSUPPORTED


def test_guard_refuses_a_name_in_a_folder_outside_even_if_it_points_back_in(home):
    (home.parent / "bob" / "x").symlink_to(home / "data" / "f")  # outside, pointing in
    guard = _guard(home)
    flags = struct.pack(">II", PF_WRITE | PF_CREAT | PF_TRUNC, 0)
    forward, answer = guard.from_client(_req(OPEN, 1, _s(b"bob-dir/x") + flags))
    assert forward == b"" and _status_code(answer) == FX_PERMISSION_DENIED
    forward, answer = guard.from_client(_req(REMOVE, 2, _s(b"bob-dir/x")))
    assert forward == b"" and _status_code(answer) == FX_PERMISSION_DENIED


def test_guard_answers_cut_short_requests_without_passing_them_on(home):
    guard = _guard(home)
    forward, answer = guard.from_client(_req(OPEN, 1, _s(b"data/x")))  # no flags
    assert forward == b"" and _status_code(answer) == FX_PERMISSION_DENIED
    assert guard.from_client(struct.pack(">I", 0)) == (b"", b"")  # an empty packet
