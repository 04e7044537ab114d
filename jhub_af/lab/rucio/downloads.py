"""Downloads into the user's home, streamed, with progress the panel polls.

Bytes go to a hidden ``.NAME.part-XXXX`` file beside the target (created with
O_EXCL|O_NOFOLLOW), and are renamed onto the target when complete; a failure
removes the partial file, so nothing half-written is left under the real name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ..api import PanelError
from .client import RucioClient
from .snippet import scheme

CHUNK = 1 << 20


@dataclass
class Download:
    """One download: where it goes, its progress, and ``error`` (a sentence) when its
    ``state`` is ``"failed"``."""

    id: str
    path: Path
    root: Path
    bytes_total: int | None
    state: str = "running"
    bytes_done: int = 0
    error: str = ""
    task: asyncio.Task | None = field(default=None, repr=False)

    def public(self) -> dict:
        """What ``GET downloads/{id}`` answers; ``path`` relative to the download root."""
        return {
            "id": self.id,
            "state": self.state,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "path": os.path.relpath(self.path, self.root),
            "error": self.error,
        }


def _open_part(path: Path) -> tuple[int, Path]:
    """Create the parent folders and an exclusive partial file beside ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part-{secrets.token_hex(4)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return os.open(part, flags, 0o644), part


def _finish(part: Path, path: Path) -> None:
    """Rename onto the target, refusing to replace anything that appeared meanwhile."""
    os.link(part, path)  # fails if path exists (even as a symlink)
    os.unlink(part)


class Downloads:
    """The server's downloads, by id (one user per server)."""

    def __init__(self, log=None):
        self.log = log
        self.items: dict[str, Download] = {}

    def get(self, download_id: str) -> Download | None:
        """The download with this id, or None (unknown, or the server restarted)."""
        return self.items.get(download_id)

    def start(
        self, client: RucioClient, pfn: str, path: Path, root: Path, size: int | None
    ) -> Download:
        """Start copying ``pfn`` (https, davs, http or file) to ``path`` (already confined to
        ``root``) in the background; its :class:`Download`, whose state the panel polls.
        Failures end up in its ``error``, never raised."""
        dl = Download(id=secrets.token_hex(8), path=path, root=root, bytes_total=size)
        self.items[dl.id] = dl
        dl.task = asyncio.ensure_future(self._run(dl, client, pfn))
        return dl

    async def _run(self, dl: Download, client: RucioClient, pfn: str) -> None:
        part = None
        try:
            fd, part = await asyncio.to_thread(_open_part, dl.path)
            with os.fdopen(fd, "wb") as out:
                if scheme(pfn) == "file":
                    await asyncio.to_thread(self._copy_local, dl, pfn[len("file://") :], out)
                else:
                    async with client.open_replica(pfn) as r:
                        length = r.headers.get("Content-Length")
                        if dl.bytes_total is None and length and length.isdigit():
                            dl.bytes_total = int(length)
                        async for chunk in r.aiter_bytes(CHUNK):
                            await asyncio.to_thread(out.write, chunk)
                            dl.bytes_done += len(chunk)
            if dl.bytes_total is not None and dl.bytes_done != dl.bytes_total:
                raise PanelError(
                    503,
                    f"The transfer stopped after {dl.bytes_done} of {dl.bytes_total} bytes; "
                    "try again or pick another replica.",
                )
            await asyncio.to_thread(_finish, part, dl.path)
            dl.state = "done"
        except FileExistsError:
            dl.state, dl.error = "failed", f"{dl.path.name} appeared meanwhile; nothing replaced."
        except PanelError as e:
            dl.state, dl.error = "failed", e.message
        except OSError as e:
            dl.state, dl.error = "failed", f"Could not write the file: {e.strerror}."
        except Exception as e:  # report, never crash the server
            if self.log:
                self.log.exception("jhub_af: Rucio download %s failed", dl.id)
            dl.state, dl.error = "failed", f"The download failed ({type(e).__name__})."
        finally:
            if part is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(part)

    @staticmethod
    def _copy_local(dl: Download, source: str, out) -> None:
        try:
            src = open(source, "rb")  # noqa: SIM115 (closed below)
        except OSError as e:
            raise PanelError(
                503,
                f"The replica file://{source} cannot be read ({e.strerror}); "
                "try another replica, or tell your facility's admins.",
            ) from None
        with src:
            if dl.bytes_total is None:
                dl.bytes_total = os.fstat(src.fileno()).st_size
            while chunk := src.read(CHUNK):
                out.write(chunk)
                dl.bytes_done += len(chunk)
