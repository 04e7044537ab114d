"""An SFTP-aware filter between the client and sftp-server, inside the user's server.

:class:`SFTPGuard` reads the SFTP (version 3) packets both ways; what it adds to
sftp-server is on :meth:`SFTPGuard.from_client` (paths) and
:meth:`SFTPGuard.from_server` (uploads).

Why the confinement holds whatever the client pipelines: a path is only meaningful at
the moment sftp-server uses it, so the guard resolves it then, not when it arrives.
A request that names a path (OPEN, OPENDIR, REMOVE, RENAME, MKDIR, RMDIR, STAT,
LSTAT, SETSTAT, READLINK, SYMLINK, REALPATH and the path extensions) waits in a queue
until no other path request is in flight, in this session *or in any other SFTP
session of this server* (one :class:`PathTurn` per process); it is then resolved
(``..`` and symlinks followed, as they are on disk at that moment) and forwarded,
and the turn passes on only when sftp-server has answered it. Requests after it keep
their order behind it. Requests on a handle (READ, WRITE, FSTAT, FSETSTAT, READDIR,
CLOSE, fsync, copy-data) name no path and change no name, so they flow pipelined
and bulk transfers keep their speed; only path requests wait, for a local pipe's
round trip. An upload's final rename is done in the folder pinned (by a file
descriptor) when the file was opened, and never follows a symlink. The guard does
not stop processes of the same user changing the home at the same moment (a shell,
a command, a notebook, a batch job): they run as the same uid and can read the same
files themselves.
"""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import struct
from collections.abc import Callable

INIT, OPEN, CLOSE, READ, WRITE = 1, 3, 4, 5, 6
LSTAT, FSTAT, SETSTAT, FSETSTAT, OPENDIR, READDIR = 7, 8, 9, 10, 11, 12
REMOVE, MKDIR, RMDIR, REALPATH, STAT = 13, 14, 15, 16, 17
RENAME, READLINK, SYMLINK, EXTENDED = 18, 19, 20, 200
VERSION, STATUS, HANDLE = 2, 101, 102
FX_OK, FX_PERMISSION_DENIED, FX_BAD_MESSAGE, FX_OP_UNSUPPORTED = 0, 3, 5, 8
PF_READ, PF_WRITE, PF_CREAT, PF_TRUNC = 0x01, 0x02, 0x08, 0x10

ONE_PATH = {OPEN, LSTAT, SETSTAT, OPENDIR, REMOVE, MKDIR, RMDIR, REALPATH, STAT, READLINK}
TWO_PATHS = {RENAME, SYMLINK}
ON_A_HANDLE = {CLOSE, READ, WRITE, FSTAT, FSETSTAT, READDIR}
EXTENSIONS_TWO_PATHS = {b"posix-rename@openssh.com", b"hardlink@openssh.com"}
EXTENSIONS_ONE_PATH = {b"statvfs@openssh.com", b"lsetstat@openssh.com", b"expand-path@openssh.com"}
EXTENSIONS_NO_PATH = {
    b"fsync@openssh.com",
    b"limits@openssh.com",
    b"copy-data",
    b"users-groups-by-id@openssh.com",
}
MAX_PACKET = 4 * 1024 * 1024
MAX_QUEUED = 64 * 1024 * 1024  # bytes of requests held behind a path request


def _read_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    """(the SFTP string at ``pos``, the position after it); ValueError if cut short."""
    (n,) = struct.unpack_from(">I", buf, pos)
    end = pos + 4 + n
    if end > len(buf):
        raise ValueError("truncated string")
    return buf[pos + 4 : end], end


def _pack_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _pack_packet(kind: int, body: bytes) -> bytes:
    return struct.pack(">IB", len(body) + 1, kind) + body


def status(request_id: int, code: int, message: str) -> bytes:
    """An SSH_FXP_STATUS packet answering ``request_id`` with ``code`` and ``message``."""
    body = struct.pack(">II", request_id, code) + _pack_string(message.encode()) + _pack_string(b"")
    return _pack_packet(STATUS, body)


class _Framer:
    """Splits a byte stream into whole SFTP packets (length-prefixed)."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The packets ``data`` completes (the rest waits); ValueError if one is too large."""
        self.buf += data
        packets = []
        while len(self.buf) >= 4:
            (n,) = struct.unpack_from(">I", self.buf, 0)
            if n > MAX_PACKET:
                raise ValueError("SFTP packet too large")
            if len(self.buf) < 4 + n:
                break
            packets.append(bytes(self.buf[: 4 + n]))
            del self.buf[: 4 + n]
        return packets


class PathTurn:
    """Which SFTP session of this process may have a path request at sftp-server.

    One guard holds the turn while its path request is in flight; the others wait in
    line and are woken (:attr:`SFTPGuard.wake`) when it is their turn. Used only by
    :class:`SFTPGuard`; one instance per process (``PROCESS_TURN``) unless a test
    gives its own.
    """

    def __init__(self):
        self.holder: SFTPGuard | None = None
        self.waiting: collections.deque[SFTPGuard] = collections.deque()

    def acquire(self, guard: SFTPGuard) -> bool:
        """True if ``guard`` holds the turn now; otherwise it joins the line (False)."""
        if self.holder is None or self.holder is guard:
            self.holder = guard
            return True
        if guard not in self.waiting:
            self.waiting.append(guard)
        return False

    def release(self, guard: SFTPGuard) -> None:
        """``guard`` lets go (if it held the turn); the first in line gets it and is woken."""
        with contextlib.suppress(ValueError):
            self.waiting.remove(guard)
        if self.holder is not guard:
            return
        self.holder = self.waiting.popleft() if self.waiting else None
        if self.holder is not None and self.holder.wake is not None:
            self.holder.wake()


PROCESS_TURN = PathTurn()


class SFTPGuard:
    """Filters one SFTP session; ``roots`` are the directories it may touch.

    Used by ``SSHChannelHandler`` for an ``sftp`` channel: every client frame goes
    through :meth:`from_client`, every sftp-server output through :meth:`from_server`,
    both of which may give bytes for either side; when :attr:`wake` is called (this
    session's turn has come while it waited), :meth:`pending` gives what may go now.
    :meth:`finish` or :meth:`abort` runs when the session ends. ``turn`` is shared by
    the sessions that must not race each other (default: every session of the process).
    """

    def __init__(self, home: str, roots: list[str] | None = None, log=None, turn=None):
        self.home = os.path.realpath(home)
        self.roots = [os.path.realpath(r) for r in (roots or [home])]
        self.log = log
        self.turn: PathTurn = turn or PROCESS_TURN
        self.wake: Callable[[], None] | None = None  # set by the channel
        self._client = _Framer()
        self._server = _Framer()
        self._queue: collections.deque[tuple[bytes, int, list[bytes] | None]] = collections.deque()
        self._queued_bytes = 0
        self._ids: set[int] = set()  # queued or in flight
        self._path_in_flight: int | None = None
        self._closed = False
        self._opening: dict[int, tuple[int, str, str]] = {}  # id -> (folder fd, temp, final)
        self._uploads: dict[bytes, tuple[int, str, str]] = {}  # handle -> the same
        self._closing: dict[int, bytes] = {}  # request id -> handle

    # -- paths
    def inside(self, raw: bytes, base: str | None = None) -> bool:
        """True if the path ``raw`` (relative to ``base``, default the home; ``..`` and
        symlinks resolved as they are now) is under a root, and so is its folder unless
        it is a root itself: a request on the name (an upload, REMOVE, LSTAT) acts in
        that folder. A path with a NUL byte is not inside."""
        path = os.fsdecode(raw)
        if "\0" in path:
            return False
        joined = os.path.join(base or self.home, path)
        full = os.path.realpath(joined)
        if full in self.roots:
            return True
        return self._under(full) and self._under(os.path.realpath(os.path.dirname(joined)))

    def _under(self, full: str) -> bool:
        return any(full == r or full.startswith(r.rstrip("/") + "/") for r in self.roots)

    def _allowed(self, kind: int, paths: list[bytes]) -> bool:
        """True if every path of the request resolves under a root now; for SYMLINK,
        each string is also checked relative to the other's folder (OpenSSH's
        sftp-server sends the target first), where the link will resolve it."""
        if not all(self.inside(p) for p in paths):
            return False
        if kind == SYMLINK:
            a, b = paths
            folder_a = os.path.dirname(os.path.join(self.home, os.fsdecode(a)))
            folder_b = os.path.dirname(os.path.join(self.home, os.fsdecode(b)))
            return self.inside(a, folder_b) and self.inside(b, folder_a)
        return True

    def _paths(self, kind: int, body: bytes) -> list[bytes] | None:
        """The paths a request names (body is after type and id); None for a request on
        a handle; ValueError/struct.error if malformed, LookupError if not supported."""
        if kind in ONE_PATH:
            path, pos = _read_string(body, 0)
            if kind == OPEN:
                struct.unpack_from(">II", body, pos)  # the flags and attribute flags
            return [path]
        if kind in TWO_PATHS:
            first, pos = _read_string(body, 0)
            return [first, _read_string(body, pos)[0]]
        if kind in ON_A_HANDLE:
            return None
        if kind != EXTENDED:
            raise LookupError(kind)
        name, pos = _read_string(body, 0)
        if name in EXTENSIONS_NO_PATH:
            return None
        if name in EXTENSIONS_ONE_PATH:
            return [_read_string(body, pos)[0]]
        if name in EXTENSIONS_TWO_PATHS:
            first, pos2 = _read_string(body, pos)
            return [first, _read_string(body, pos2)[0]]
        raise LookupError(name)

    # -- client to server
    def from_client(self, data: bytes) -> tuple[bytes, bytes]:
        """(bytes for sftp-server now, answers to send straight back to the client).

        Takes any slice of the client's byte stream; whole packets are queued in order
        and go on as soon as they may (see the module docstring): a path request only
        when no other path request is in flight, checked at that moment. A request
        naming a path outside the roots, a malformed one, a repeated request id or an
        unknown request or extension is answered here (permission denied / bad message
        / unsupported) and never reaches sftp-server. A file opened to be created afresh
        (``WRITE|CREAT|TRUNC``) is opened under a hidden temporary name next to it.
        Raises ValueError for a packet over MAX_PACKET (4 MiB) or more than MAX_QUEUED
        bytes held back.
        """
        answers = []
        for pkt in self._client.feed(data):
            answer = self._enqueue(pkt)
            if answer:
                answers.append(answer)
        forward, more = self.pending()
        return forward, b"".join(answers) + more

    def _enqueue(self, pkt: bytes) -> bytes | None:
        """Queue one request; the answer if it is refused before it is queued."""
        if len(pkt) < 5:
            return None  # an empty packet: nothing to forward or answer
        kind = pkt[4]
        if kind == INIT:
            self._queue.append((pkt, -1, None))
            return None
        if len(pkt) < 9:
            return None  # no id to answer; sftp-server never sees it
        (rid,) = struct.unpack_from(">I", pkt, 5)
        if rid in self._ids:
            return status(rid, FX_BAD_MESSAGE, "Request id already in use.")
        try:
            paths = self._paths(kind, pkt[9:])
            if kind == CLOSE:
                self._closing[rid] = _read_string(pkt, 9)[0]
        except (ValueError, struct.error):
            return status(rid, FX_PERMISSION_DENIED, "Malformed request.")
        except LookupError:
            return status(rid, FX_OP_UNSUPPORTED, "Not supported here.")
        self._queued_bytes += len(pkt)
        if self._queued_bytes > MAX_QUEUED:
            raise ValueError("too many SFTP requests held back")
        self._ids.add(rid)
        self._queue.append((pkt, rid, paths))
        return None

    def pending(self) -> tuple[bytes, bytes]:
        """(bytes for sftp-server, answers for the client) that may go now, in order.

        Called by :meth:`from_client` and :meth:`from_server`, and by the channel when
        :attr:`wake` says this session's turn has come.
        """
        forward, answers = [], []
        while self._queue and not self._closed:
            pkt, rid, paths = self._queue[0]
            if paths is not None and (
                self._path_in_flight is not None or not self.turn.acquire(self)
            ):
                break
            self._queue.popleft()
            self._queued_bytes -= len(pkt)
            if paths is not None:
                if not self._allowed(pkt[4], paths):
                    self._ids.discard(rid)
                    if self.log:
                        self.log.info("jhub_af sftp: refused a path outside the home")
                    answers.append(
                        status(rid, FX_PERMISSION_DENIED, "Outside your home directory.")
                    )
                    continue
                self._path_in_flight = rid
                if pkt[4] == OPEN:
                    pkt = self._redirect_upload(rid, pkt)
            forward.append(pkt)
        if self._path_in_flight is None and (not self._queue or self._closed):
            self.turn.release(self)
        return b"".join(forward), b"".join(answers)

    def _redirect_upload(self, rid: int, pkt: bytes) -> bytes:
        """An OPEN to create a file afresh, rewritten to a hidden temporary name in the
        folder as it resolves now (pinned by a descriptor for the final rename)."""
        path, pos = _read_string(pkt, 9)
        (pflags,) = struct.unpack_from(">I", pkt, pos)
        want = PF_WRITE | PF_CREAT | PF_TRUNC
        folder, name = os.path.split(os.path.join(self.home, os.fsdecode(path)))
        if pflags & want != want or name in ("", ".", ".."):
            return pkt
        folder = os.path.realpath(folder)
        try:
            fd = os.open(folder, os.O_PATH | os.O_DIRECTORY)
        except OSError:
            return pkt  # sftp-server will say why
        temp = f".{name}.part-{secrets.token_hex(4)}"
        self._opening[rid] = (fd, temp, name)
        body = struct.pack(">I", rid) + _pack_string(os.fsencode(os.path.join(folder, temp)))
        return _pack_packet(OPEN, body + pkt[pos:])

    # -- server to client
    def from_server(self, data: bytes) -> tuple[bytes, bytes]:
        """(bytes for the client, bytes for sftp-server), from a slice of its output.

        An answer to a path request lets the next path request go (here or, woken, in
        another session). An upload's temporary file is renamed to its real name when
        sftp-server says its close succeeded (a failed rename is answered as permission
        denied), and removed when the close failed: a dropped transfer leaves nothing
        under the real name. Raises ValueError for a packet over MAX_PACKET.
        """
        out = []
        for pkt in self._server.feed(data):
            kind = pkt[4]
            if kind != VERSION and len(pkt) >= 9:
                (rid,) = struct.unpack_from(">I", pkt, 5)
                if kind == HANDLE and rid in self._opening:
                    self._uploads[_read_string(pkt, 9)[0]] = self._opening.pop(rid)
                elif kind == STATUS:
                    self._drop_opening(rid)
                    handle = self._closing.pop(rid, None)
                    if handle is not None and handle in self._uploads:
                        pkt = self._finish_upload(rid, pkt, *self._uploads.pop(handle))
                self._answered(rid)
            out.append(pkt)
        forward, answers = self.pending()
        return b"".join(out) + answers, forward

    def _answered(self, rid: int) -> None:
        self._ids.discard(rid)
        self._closing.pop(rid, None)
        if rid == self._path_in_flight:
            self._path_in_flight = None
            self.turn.release(self)  # the next in line first; this session queues again

    def _drop_opening(self, rid: int) -> None:
        entry = self._opening.pop(rid, None)
        if entry is not None:
            os.close(entry[0])

    def _finish_upload(self, rid: int, pkt: bytes, fd: int, temp: str, final: str) -> bytes:
        """Rename ``temp`` to ``final`` in the pinned folder if the close succeeded."""
        try:
            (code,) = struct.unpack_from(">I", pkt, 9)
            if code != FX_OK:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=fd)
                return pkt
            try:
                os.replace(temp, final, src_dir_fd=fd, dst_dir_fd=fd)
            except OSError as e:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=fd)
                return status(
                    rid, FX_PERMISSION_DENIED, f"Could not finish the upload: {e.strerror}"
                )
            return pkt
        finally:
            os.close(fd)

    def abort(self) -> None:
        """The session ended: uploads not closed are incomplete; remove their temporary
        files, and let another session have the turn.

        Also called as ``finish`` when sftp-server exits normally.
        """
        self._closed = True
        self._queue.clear()
        self._path_in_flight = None
        self.turn.release(self)
        pending = list(self._uploads.values()) + list(self._opening.values())
        self._uploads.clear()
        self._opening.clear()
        for fd, temp, _final in pending:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=fd)
            os.close(fd)

    finish = abort
