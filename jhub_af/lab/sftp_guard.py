"""An SFTP-aware filter between the client and sftp-server, inside the user's server.

:class:`SFTPGuard` reads the SFTP (version 3) packets both ways; what it adds to
sftp-server is on :meth:`SFTPGuard.from_client` (paths) and
:meth:`SFTPGuard.from_server` (uploads).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import struct

INIT, OPEN, CLOSE = 1, 3, 4
LSTAT, SETSTAT, OPENDIR, REMOVE, MKDIR, RMDIR, REALPATH, STAT = 7, 9, 11, 13, 14, 15, 16, 17
RENAME, READLINK, SYMLINK, EXTENDED = 18, 19, 20, 200
STATUS, HANDLE = 101, 102
FX_OK, FX_PERMISSION_DENIED, FX_OP_UNSUPPORTED = 0, 3, 8
PF_READ, PF_WRITE, PF_CREAT, PF_TRUNC = 0x01, 0x02, 0x08, 0x10

ONE_PATH = {OPEN, LSTAT, SETSTAT, OPENDIR, REMOVE, MKDIR, RMDIR, REALPATH, STAT, READLINK}
TWO_PATHS = {RENAME, SYMLINK}
EXTENSIONS_TWO_PATHS = {b"posix-rename@openssh.com", b"hardlink@openssh.com"}
EXTENSIONS_ONE_PATH = {b"statvfs@openssh.com", b"lsetstat@openssh.com", b"expand-path@openssh.com"}
EXTENSIONS_NO_PATH = {
    b"fsync@openssh.com",
    b"limits@openssh.com",
    b"copy-data",
    b"users-groups-by-id@openssh.com",
}
MAX_PACKET = 4 * 1024 * 1024


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


class SFTPGuard:
    """Filters one SFTP session; ``roots`` are the directories it may touch.

    Used by ``SSHChannelHandler`` for an ``sftp`` channel: every client frame goes
    through :meth:`from_client`, every sftp-server output through :meth:`from_server`,
    and :meth:`finish` or :meth:`abort` runs when the session ends.
    """

    def __init__(self, home: str, roots: list[str] | None = None, log=None):
        self.home = os.path.realpath(home)
        self.roots = [os.path.realpath(r) for r in (roots or [home])]
        self.log = log
        self._client = _Framer()
        self._server = _Framer()
        self._opening: dict[int, tuple[str, str]] = {}  # request id -> (temp, final)
        self._uploads: dict[bytes, tuple[str, str]] = {}  # handle -> (temp, final)
        self._closing: dict[int, bytes] = {}  # request id -> handle

    # -- paths
    def inside(self, raw: bytes) -> bool:
        """True if the path ``raw`` (relative to the home, ``..`` and symlinks resolved)
        is under a root; a path with a NUL byte is not."""
        path = os.fsdecode(raw)
        if "\0" in path:
            return False
        full = os.path.realpath(os.path.join(self.home, path))
        return any(full == r or full.startswith(r.rstrip("/") + "/") for r in self.roots)

    def _paths(self, kind: int, body: bytes) -> list[bytes]:
        """The paths a request names (body is after type and id)."""
        if kind in ONE_PATH:
            return [_read_string(body, 0)[0]]
        if kind in TWO_PATHS:
            first, pos = _read_string(body, 0)
            return [first, _read_string(body, pos)[0]]
        return []

    # -- client to server
    def from_client(self, data: bytes) -> tuple[bytes, bytes]:
        """(bytes for sftp-server, answers to send straight back to the client).

        Takes any slice of the client's byte stream; whole packets are filtered, the rest
        waits for more. A request naming a path outside the roots, a malformed one, or an
        unknown extension is answered here (permission denied / unsupported) and never
        reaches sftp-server. A file opened to be created afresh (``WRITE|CREAT|TRUNC``)
        is opened under a hidden temporary name next to it. Raises ValueError for a
        packet over MAX_PACKET (4 MiB).
        """
        forward, answers = [], []
        for pkt in self._client.feed(data):
            out, answer = self._request(pkt)
            if out:
                forward.append(out)
            if answer:
                answers.append(answer)
        return b"".join(forward), b"".join(answers)

    def _request(self, pkt: bytes) -> tuple[bytes | None, bytes | None]:
        kind = pkt[4]
        if kind == INIT:
            return pkt, None
        (rid,) = struct.unpack_from(">I", pkt, 5)
        body = pkt[9:]
        try:
            if kind == EXTENDED:
                name, pos = _read_string(body, 0)
                if name in EXTENSIONS_NO_PATH:
                    paths = []
                elif name in EXTENSIONS_ONE_PATH:
                    paths = [_read_string(body, pos)[0]]
                elif name in EXTENSIONS_TWO_PATHS:
                    first, pos2 = _read_string(body, pos)
                    paths = [first, _read_string(body, pos2)[0]]
                else:
                    return None, status(rid, FX_OP_UNSUPPORTED, "Not supported here.")
            else:
                paths = self._paths(kind, body)
        except (ValueError, struct.error):
            return None, status(rid, FX_PERMISSION_DENIED, "Malformed request.")
        for path in paths:
            if not self.inside(path):
                if self.log:
                    self.log.info("jhub_af sftp: refused a path outside the home")
                return None, status(rid, FX_PERMISSION_DENIED, "Outside your home directory.")
        if kind == OPEN:
            return self._redirect_upload(rid, body, pkt), None
        if kind == CLOSE:
            self._closing[rid] = _read_string(body, 0)[0]
        return pkt, None

    def _redirect_upload(self, rid: int, body: bytes, pkt: bytes) -> bytes:
        """An OPEN to create a file afresh, rewritten to a hidden temporary name."""
        path, pos = _read_string(body, 0)
        (pflags,) = struct.unpack_from(">I", body, pos)
        want = PF_WRITE | PF_CREAT | PF_TRUNC
        if pflags & want != want:
            return pkt
        final = os.path.join(self.home, os.fsdecode(path))
        folder, name = os.path.split(final)
        temp = os.path.join(folder, f".{name}.part-{secrets.token_hex(4)}")
        self._opening[rid] = (temp, final)
        new_body = struct.pack(">I", rid) + _pack_string(os.fsencode(temp)) + body[pos:]
        return _pack_packet(OPEN, new_body)

    # -- server to client
    def from_server(self, data: bytes) -> bytes:
        """The bytes for the client, from a slice of sftp-server's output.

        An upload's temporary file is renamed to its real name when sftp-server says its
        close succeeded (a failed rename is answered as permission denied), and removed
        when the close failed: a dropped transfer leaves nothing under the real name.
        Raises ValueError for a packet over MAX_PACKET.
        """
        out = []
        for pkt in self._server.feed(data):
            kind = pkt[4]
            if kind in (STATUS, HANDLE) and len(pkt) >= 9:
                (rid,) = struct.unpack_from(">I", pkt, 5)
                if kind == HANDLE and rid in self._opening:
                    self._uploads[_read_string(pkt, 9)[0]] = self._opening.pop(rid)
                elif kind == STATUS:
                    self._opening.pop(rid, None)
                    handle = self._closing.pop(rid, None)
                    if handle is not None and handle in self._uploads:
                        pkt = self._finish_upload(rid, pkt, *self._uploads.pop(handle))
            out.append(pkt)
        return b"".join(out)

    def _finish_upload(self, rid: int, pkt: bytes, temp: str, final: str) -> bytes:
        """Rename ``temp`` to ``final`` if the close succeeded; the packet for the client."""
        (code,) = struct.unpack_from(">I", pkt, 9)
        if code != FX_OK:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            return pkt
        try:
            os.replace(temp, final)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            return status(rid, FX_PERMISSION_DENIED, f"Could not finish the upload: {e.strerror}")
        return pkt

    def abort(self) -> None:
        """The session ended: uploads not closed are incomplete; remove their temporary files.

        Also called as ``finish`` when sftp-server exits normally.
        """
        pending = list(self._uploads.values()) + list(self._opening.values())
        self._uploads.clear()
        self._opening.clear()
        for temp, _final in pending:
            with contextlib.suppress(OSError):
                os.unlink(temp)

    finish = abort
