"""af-ssh's pure parts: login names, failure limits, and the SFTP guard on real files."""

from __future__ import annotations

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
    REMOVE,
    RENAME,
    STAT,
    STATUS,
    SYMLINK,
    SFTPGuard,
)
from jhub_af.ssh import BadLoginName, LoginName, parse_login
from jhub_af.ssh.limits import FailureLimiter
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


def test_limiter_locks_after_max_failures_within_window_then_expires():
    clock = Clock()
    limiter = FailureLimiter(max_failures=3, window=10, lockout=60, clock=clock)
    assert not limiter.failed("bob") and not limiter.failed("bob")
    assert not limiter.locked("bob")
    assert limiter.failed("bob")  # the third one locks
    assert limiter.locked("bob") and not limiter.locked("alice")
    clock.now += 59
    assert limiter.locked("bob")
    clock.now += 2
    assert not limiter.locked("bob")


def test_limiter_forgets_failures_outside_the_window():
    clock = Clock()
    limiter = FailureLimiter(max_failures=3, window=10, lockout=60, clock=clock)
    limiter.failed("bob")
    limiter.failed("bob")
    clock.now += 11
    assert not limiter.failed("bob")
    assert not limiter.locked("bob")


# -- the SFTP guard, on real files in a temporary home


def _s(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _req(kind: int, rid: int, body: bytes) -> bytes:
    payload = bytes([kind]) + struct.pack(">I", rid) + body
    return struct.pack(">I", len(payload)) + payload


def _status_code(packet: bytes) -> int:
    assert packet[4] == STATUS
    return struct.unpack_from(">I", packet, 9)[0]


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
    guard = SFTPGuard(str(home))
    forward, answer = guard.from_client(_req(STAT, 7, _s(path)))
    assert forward == b""
    assert _status_code(answer) == FX_PERMISSION_DENIED
    assert struct.unpack_from(">I", answer, 5)[0] == 7  # the request's id


@pytest.mark.parametrize("path", [b".", b"data", b"data/../data/x", "ü.txt".encode()])
def test_guard_passes_paths_inside_the_home(home, path):
    guard = SFTPGuard(str(home))
    packet = _req(STAT, 1, _s(path))
    assert guard.from_client(packet) == (packet, b"")


def test_guard_checks_both_paths_of_rename_and_symlink(home):
    guard = SFTPGuard(str(home))
    for kind in (RENAME, SYMLINK):
        forward, answer = guard.from_client(_req(kind, 3, _s(b"data") + _s(b"../../secret2")))
        assert forward == b"" and _status_code(answer) == FX_PERMISSION_DENIED
        forward, answer = guard.from_client(_req(kind, 4, _s(b"/tmp/x") + _s(b"data/y")))
        assert forward == b"" and _status_code(answer) == FX_PERMISSION_DENIED


def test_guard_refuses_unknown_extensions_and_checks_known_ones(home):
    guard = SFTPGuard(str(home))
    _, answer = guard.from_client(_req(EXTENDED, 5, _s(b"evil@example.org") + _s(b"x")))
    assert _status_code(answer) == FX_OP_UNSUPPORTED
    body = _s(b"posix-rename@openssh.com") + _s(b"data") + _s(b"../escape")
    _, answer = guard.from_client(_req(EXTENDED, 6, body))
    assert _status_code(answer) == FX_PERMISSION_DENIED


def test_guard_handles_packets_split_across_reads(home):
    guard = SFTPGuard(str(home))
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
    guard = SFTPGuard(str(home))
    temp = _open_for_upload(guard, 1, b"data/result.root")
    assert os.path.dirname(temp) == str(home / "data")
    guard.from_server(_handle_reply(1, b"H1"))
    with open(temp, "wb") as f:  # what sftp-server would write
        f.write(b"new bytes")
    assert (home / "data" / "result.root").read_bytes() == b"the old, complete file"
    guard.from_client(_req(CLOSE, 2, _s(b"H1")))
    reply = guard.from_server(_status_reply(2, FX_OK))
    assert _status_code(reply) == FX_OK
    assert (home / "data" / "result.root").read_bytes() == b"new bytes"
    assert not os.path.exists(temp)


def test_guard_removes_an_unfinished_upload_and_keeps_the_old_file(home):
    (home / "data" / "result.root").write_bytes(b"the old, complete file")
    guard = SFTPGuard(str(home))
    temp = _open_for_upload(guard, 1, b"data/result.root")
    guard.from_server(_handle_reply(1, b"H1"))
    with open(temp, "wb") as f:
        f.write(b"half of it")
    guard.abort()  # the client went away before closing
    assert not os.path.exists(temp)
    assert (home / "data" / "result.root").read_bytes() == b"the old, complete file"
    assert sorted(p.name for p in (home / "data").iterdir()) == ["result.root"]


def test_guard_leaves_reads_and_other_requests_alone(home):
    guard = SFTPGuard(str(home))
    flags = struct.pack(">II", PF_READ, 0)
    packet = _req(OPEN, 1, _s(b"data/x") + flags)
    assert guard.from_client(packet) == (packet, b"")
    packet = _req(REMOVE, 2, _s(b"data/x"))
    assert guard.from_client(packet) == (packet, b"")
