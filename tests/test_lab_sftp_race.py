"""The SFTP guard against a client that pipelines: raw SFTP packets written in one go
to the guard in front of a real OpenSSH sftp-server, as ``SSHChannelHandler`` runs it.

The home is ``tmp/home/alice``; bob's files are next to it. ``l -> q/..`` is alice's
link to her own home while ``q`` is a folder; once ``q`` is swapped for ``q -> .``,
``l`` means ``tmp/home`` and ``l/bob/...`` is bob's. A guard that checks a batch on
arrival lets the swap and the use through together."""

from __future__ import annotations

import asyncio
import os
import struct

import pytest

from jhub_af.lab.sftp_guard import (
    EXTENDED,
    FX_PERMISSION_DENIED,
    HANDLE,
    INIT,
    OPEN,
    PF_CREAT,
    PF_READ,
    PF_TRUNC,
    PF_WRITE,
    READ,
    RENAME,
    RMDIR,
    STATUS,
    SYMLINK,
    VERSION,
    PathTurn,
    SFTPGuard,
    _Framer,
)
from jhub_af.lab.ssh_channel import SFTP_SERVER_PATHS

SFTP_SERVER = next((p for p in SFTP_SERVER_PATHS if os.access(p, os.X_OK)), None)
pytestmark = pytest.mark.skipif(SFTP_SERVER is None, reason="needs OpenSSH's sftp-server")
SECRET = b"bob's secret, not for alice's sftp"


def _s(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _req(kind: int, rid: int, body: bytes) -> bytes:
    payload = bytes([kind]) + struct.pack(">I", rid) + body
    return struct.pack(">I", len(payload)) + payload


def _open(rid: int, path: bytes, flags: int = PF_READ) -> bytes:
    return _req(OPEN, rid, _s(path) + struct.pack(">II", flags, 0))


def _swap_q(first: int) -> bytes:
    """RMDIR q, then SYMLINK q -> . (OpenSSH's sftp-server takes the target first)."""
    return _req(RMDIR, first, _s(b"q")) + _req(SYMLINK, first + 1, _s(b".") + _s(b"q"))


class RawClient:
    """A pipelining SFTP client on the guard (or, with ``guard=None``, straight on
    sftp-server), wired as ``SSHChannelHandler`` wires them."""

    def __init__(self, home, guard: SFTPGuard | None):
        self.home, self.guard = home, guard
        self.replies: dict[int, bytes] = {}
        self.framer = _Framer()
        self.arrived = asyncio.Event()

    async def start(self) -> RawClient:
        self.proc = await asyncio.create_subprocess_exec(
            SFTP_SERVER, "-d", str(self.home), cwd=self.home,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        if self.guard is not None:
            loop = asyncio.get_running_loop()
            self.guard.wake = lambda: loop.call_soon(lambda: self._out(*self.guard.pending()))
        self.pump = asyncio.ensure_future(self._pump())
        self.send(struct.pack(">IBI", 5, INIT, 3))
        await self.reply(-1)
        return self

    def send(self, batch: bytes) -> None:
        """Write ``batch`` (many requests) at once, as one websocket frame would."""
        if self.guard is None:
            self._out(batch, b"")
        else:
            self._out(*self.guard.from_client(batch))

    def _out(self, to_server: bytes, to_client: bytes) -> None:
        if to_server:
            self.proc.stdin.write(to_server)
        for pkt in self.framer.feed(to_client):
            rid = -1 if pkt[4] == VERSION else struct.unpack_from(">I", pkt, 5)[0]
            self.replies[rid] = pkt
            self.arrived.set()

    async def _pump(self) -> None:
        while data := await self.proc.stdout.read(65536):
            if self.guard is None:
                self._out(b"", data)
            else:
                to_client, to_server = self.guard.from_server(data)
                self._out(to_server, to_client)

    async def reply(self, rid: int) -> bytes:
        while rid not in self.replies:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 10)
        return self.replies[rid]

    async def read_all(self, handle: bytes, rid: int) -> bytes:
        self.send(_req(READ, rid, _s(handle) + struct.pack(">QI", 0, 4096)))
        pkt = await self.reply(rid)
        return pkt[13 : 13 + struct.unpack_from(">I", pkt, 9)[0]] if pkt[4] != STATUS else b""

    async def close(self) -> None:
        self.proc.stdin.close()
        await self.proc.wait()
        await self.pump
        if self.guard is not None:
            self.guard.finish()


def _code(pkt: bytes) -> int:
    assert pkt[4] == STATUS, pkt
    return struct.unpack_from(">I", pkt, 9)[0]


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home" / "alice"
    (home / "q").mkdir(parents=True)
    (home / "l").symlink_to("q/..")  # alice's own home, while q is a folder
    (home / "mine.txt").write_text("alice's")
    bob = tmp_path / "home" / "bob"
    bob.mkdir()
    (bob / "secret.txt").write_bytes(SECRET)
    (tmp_path / "outside").mkdir()
    (home / "link-out").symlink_to(tmp_path / "outside")
    return home


def _bob_untouched(home) -> None:
    assert sorted(p.name for p in (home.parent / "bob").iterdir()) == ["secret.txt"]
    assert (home.parent / "bob" / "secret.txt").read_bytes() == SECRET
    assert list((home.parent.parent / "outside").iterdir()) == []


async def test_the_batch_reads_bobs_file_when_nothing_holds_it_back(home):
    """The control: the attack is real against sftp-server on its own."""
    client = await RawClient(home, None).start()
    client.send(_swap_q(1) + _open(3, b"l/bob/secret.txt"))
    opened = await client.reply(3)
    assert opened[4] == HANDLE
    assert (
        await client.read_all(opened[13 : 13 + struct.unpack_from(">I", opened, 9)[0]], 4) == SECRET
    )
    await client.close()


async def test_a_pipelined_swap_and_open_through_the_guard_reads_and_writes_nothing_outside(home):
    client = await RawClient(home, SFTPGuard(str(home), turn=PathTurn())).start()
    batch = (
        _swap_q(1)
        + _open(3, b"l/bob/secret.txt")
        + _open(4, b"l/bob/planted.txt", PF_WRITE | PF_CREAT | PF_TRUNC)
        + _open(5, b"l/bob/appended.txt", PF_WRITE | PF_CREAT)
        + _req(RENAME, 6, _s(b"mine.txt") + _s(b"l/bob/moved.txt"))
        + _req(EXTENDED, 7, _s(b"posix-rename@openssh.com") + _s(b"mine.txt") + _s(b"l/bob/x"))
        + _req(SYMLINK, 8, _s(b"l/bob") + _s(b"bob-link"))
        + _req(READ, 9, _s(b"\x00\x00\x00\x00") + struct.pack(">QI", 0, 4096))
    )
    client.send(batch)
    assert _code(await client.reply(1)) == 0 and _code(await client.reply(2)) == 0
    assert os.readlink(home / "q") == "."  # the swap happened: l now means tmp/home
    for rid in (3, 4, 5, 6, 7, 8):
        assert _code(await client.reply(rid)) == FX_PERMISSION_DENIED, rid
    assert (await client.reply(9))[4] == STATUS  # no handle was ever opened
    await client.close()
    _bob_untouched(home)
    assert (home / "mine.txt").read_text() == "alice's"
    assert not (home / "bob-link").exists()


async def test_a_rename_onto_a_symlink_out_of_the_home_is_refused(home):
    client = await RawClient(home, SFTPGuard(str(home), turn=PathTurn())).start()
    client.send(
        _req(RENAME, 1, _s(b"mine.txt") + _s(b"link-out"))
        + _req(RENAME, 2, _s(b"mine.txt") + _s(b"link-out/taken.txt"))
        + _req(EXTENDED, 3, _s(b"posix-rename@openssh.com") + _s(b"mine.txt") + _s(b"link-out"))
        + _req(EXTENDED, 4, _s(b"hardlink@openssh.com") + _s(b"mine.txt") + _s(b"link-out/h"))
    )
    for rid in (1, 2, 3, 4):
        assert _code(await client.reply(rid)) == FX_PERMISSION_DENIED, rid
    await client.close()
    _bob_untouched(home)
    assert (home / "link-out").is_symlink() and (home / "mine.txt").read_text() == "alice's"


async def test_a_second_session_cannot_swap_the_folder_under_the_first(home):
    """Two sessions of the same server race: one swaps q back and forth, the other opens
    through l. With one turn per server, no open ever lands in bob's home."""
    turn = PathTurn()
    swapper = await RawClient(home, SFTPGuard(str(home), turn=turn)).start()
    reader = await RawClient(home, SFTPGuard(str(home), turn=turn)).start()
    for i in range(0, 600, 6):
        swapper.send(
            _swap_q(i + 1)
            + _req(EXTENDED, i + 3, _s(b"posix-rename@openssh.com") + _s(b"q") + _s(b"q.old"))
            + _req(14, i + 4, _s(b"q") + struct.pack(">I", 0))  # MKDIR q
        )
        reader.send(
            _open(i + 1, b"l/bob/secret.txt") + _open(i + 2, b"l/bob/p", PF_WRITE | PF_CREAT)
        )
        for rid in (i + 1, i + 2):
            assert (await reader.reply(rid))[4] == STATUS, rid
        await swapper.reply(i + 4)
        (home / "q.old").unlink(missing_ok=True)
    await swapper.close()
    await reader.close()
    _bob_untouched(home)
