"""Where a download may be written: inside the download root, never outside it."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath


class TargetRefused(ValueError):
    """A download target that would leave the user's folder, or is malformed."""


def file_basename(did_name: str) -> str:
    """A file name for a DID: its last path part, never empty, '.' or '..'."""
    base = did_name.rstrip("/").rsplit("/", 1)[-1]
    return base if base not in ("", ".", "..") else "rucio-file"


def confine_target(root: Path, target: str, did_name: str = "") -> Path:
    """The absolute path ``target`` names inside ``root``, or TargetRefused.

    ``target`` is relative to ``root``; one ending in '/' (or naming an existing
    folder) gets the DID's file name. Refused: empty, absolute, '~', '..' parts,
    NUL bytes, and any path that resolves (through symbolic links) outside ``root``.
    """
    if not isinstance(target, str) or not target.strip():
        raise TargetRefused("Give a target path relative to your home, e.g. data/file.root.")
    if "\x00" in target:
        raise TargetRefused("The target path contains a NUL byte; use an ordinary file name.")
    if target.startswith(("/", "\\", "~")) or PurePosixPath(target).is_absolute():
        raise TargetRefused(
            f"The target {target!r} is absolute; give a path relative to your home, "
            "e.g. data/file.root."
        )
    parts = PurePosixPath(target).parts
    if ".." in parts or ".." in target.split("\\"):
        raise TargetRefused(
            f"The target {target!r} contains '..'; give a path inside your home, "
            "e.g. data/file.root."
        )
    root_real = Path(os.path.realpath(root))
    path = root_real.joinpath(*parts)
    if target.endswith("/") or path.is_dir():
        path = path / file_basename(did_name)
    resolved = Path(os.path.realpath(path))
    if resolved != root_real and root_real not in resolved.parents:
        raise TargetRefused(
            f"The target {target!r} leads outside your home through a symbolic link; "
            "choose a folder inside your home."
        )
    if path.is_symlink() or path.exists():
        raise TargetRefused(f"{target!r} exists already; choose another name or delete it first.")
    return resolved
