"""The hub-config toolkit: what every component's ``*_hub_config`` function needs.

Each component that joins the hub (af-accounting, the Dask Gateway, the bearer
token, the panel's usage tab, the demo) writes its secrets, its roles and the
scopes of the single-user server's token the same way, with these functions.

Files that hold secrets (tokens, keys, a database URL with a password, a ledger)
are their owner's only: :func:`private_dir` (0700), :func:`private_file` and
:func:`write_private` (0600), :func:`secret_file` (0600, made once).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

# JupyterHub's own scopes of the ``server`` role (the token in each single-user
# server's environment): a role of that name in ``load_roles`` replaces them, so a
# component that adds scopes to it must repeat these
SERVER_DEFAULT_SCOPES = ("users:activity!user", "access:servers!server")


_DIR_MODE = 0o700
_FILE_MODE = 0o600


def _tighten(path: Path, mode: int) -> None:
    """chmod ``path`` to ``mode`` when this process owns it and its mode differs
    (a file or directory of someone else is left as it is: we may not change it)."""
    st = path.stat()
    if st.st_uid == os.geteuid() and (st.st_mode & 0o777) != mode:
        path.chmod(mode)


def private_dir(path: str | Path) -> Path:
    """The directory ``path``, made (with missing parents) readable by its owner only.

    A new directory is created 0700; an existing one this process owns is changed to
    0700 (one owned by another user is left as it is). Missing parents are made with
    the usual mode (umask). Returns ``path`` as a Path. Raises ``OSError`` when it
    cannot be made, or ``FileExistsError`` when ``path`` is a file.

    Called by the ``*_hub_config`` functions of accounting and the gateway, and by the
    demo for its data directory and the services' directories in it.
    """
    path = Path(path)
    path.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, _DIR_MODE)
    return path


def private_file(path: str | Path) -> Path:
    """The file ``path``, created empty and 0600 when missing, its content kept.

    For a file another program fills (an SQLite database: SQLite takes an empty file
    as an empty database, and gives its journal and WAL files the database's mode):
    a new file is created 0600 before anyone writes into it; an existing one this
    process owns is changed to 0600. Returns ``path`` as a Path. Raises ``OSError``
    when it cannot be made (e.g. its directory is missing).

    Called by :func:`secret_file`, accounting's hub config (the SQLite ledger) and
    the demo (the hub's database).
    """
    path = Path(path)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE))
    _tighten(path, _FILE_MODE)
    return path


def write_private(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable by its owner only (0600), atomically.

    The text goes into a new 0600 file beside ``path`` (never a moment readable by
    others), which then replaces ``path`` in one step: a reader sees the old file or
    the new one, never half of it, and an old file's looser mode goes with it.
    Returns ``path`` as a Path. Raises ``OSError`` when the directory cannot be
    written (nothing is left behind).

    Called by the hub configs that write a service's config file holding secrets
    (af-accounting's, the Dask Gateway's).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def secret_file(path: str | Path, make: Callable[[], str] = lambda: secrets.token_hex(32)) -> str:
    """The secret kept in ``path``, made once with ``make()`` (64 hex digits by default).

    The file is created readable by its owner only (0600) *before* the secret is
    written into it; an existing one this process owns is changed to 0600. Returns
    the file's text without surrounding whitespace. Raises ``OSError`` when the file
    cannot be made or read.

    Called by the ``*_hub_config`` functions of accounting, the gateway and the demo.
    """
    path = Path(path)
    if not path.exists():
        private_file(path).write_text(make())
    else:
        _tighten(path, _FILE_MODE)
    return path.read_text().strip()


def server_role(extra_scopes: Iterable[str]) -> dict:
    """The ``server`` role: JupyterHub's default scopes of the single-user server's
    token plus ``extra_scopes`` (each once, in order).

    Returns a role dict for ``c.JupyterHub.load_roles``; merge roles of several
    components with :func:`add_roles`.
    """
    scopes = list(SERVER_DEFAULT_SCOPES)
    scopes += [s for s in extra_scopes if s not in scopes]
    return {"name": "server", "scopes": scopes}


def add_roles(c, roles: Iterable[dict]) -> None:
    """Merge ``roles`` into ``c.JupyterHub.load_roles`` of the hub config ``c``.

    A role whose name is already there gets the new scopes added to its own (each
    once), and its other keys (``users``, ``groups``, ``services``) kept; a new name
    is added as it is. Changes ``c`` in place; returns nothing.

    Called by the demo's hub config and by facility configs that combine components.
    """
    merged = {r["name"]: dict(r) for r in c.JupyterHub.get("load_roles", [])}
    for role in roles:
        if role["name"] in merged:
            scopes = list(merged[role["name"]].get("scopes", []))
            merged[role["name"]]["scopes"] = scopes + [
                x for x in role.get("scopes", []) if x not in scopes
            ]
        else:
            merged[role["name"]] = dict(role)
    c.JupyterHub.load_roles = list(merged.values())
