"""The hub's REST API where JupyterHub 5 and 6 differ: the body that starts a server."""

from __future__ import annotations

from collections.abc import Mapping


class BadSpawnBody(ValueError):
    """A spawn body that is not a JSON object; the message says what to send."""


def spawn_body(options: dict, jupyterhub_version: str) -> dict:
    """The REST body of ``POST /hub/api/users/{name}/server`` for a hub of that version.

    Takes the server options (``{"profile": "default"}``) and the hub's version as its
    ``GET /hub/api/`` reports it (``"6.1.1"``, ``"5"``); returns
    ``{"user_options": options}`` for JupyterHub 6 and later, ``options`` itself for 5.
    Raises ``ValueError`` when the version does not start with a number.

    Called by af-ssh's hub client (:class:`jhub_af.ssh.hub.HubClient`) and the tests.
    """
    major = int(jupyterhub_version.split(".", 1)[0])
    return {"user_options": options} if major >= 6 else dict(options)


def unwrap_spawn_body(options) -> dict:
    """The server options inside whichever spawn body the spawner was handed.

    JupyterHub 6 takes ``{"user_options": {...}}`` and hands the inner dict to the
    spawner; JupyterHub 5 hands the spawner the whole body, so a client that sends the
    6 shape to a 5 hub arrives wrapped. Takes ``None`` (no options: ``{}``) or a
    mapping; returns a new dict of the options. Raises :class:`BadSpawnBody` for
    anything else.

    Called by :func:`jhub_af.spawner.options.select` at every start.
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise BadSpawnBody('Server options must be a JSON object such as {"profile": "default"}.')
    if set(options) <= {"user_options", "display_name"} and "user_options" in options:
        inner = options["user_options"]
        return dict(inner) if isinstance(inner, Mapping) else unwrap_spawn_body(inner)
    return dict(options)
