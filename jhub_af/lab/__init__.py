"""The jupyter-server extension of jhub_af, inside each user's server.

Its face is light (importing it loads no jupyter-server handler), because af-ssh and
the hub config read names from it:

- :func:`usage_hub_config`: the hub config's side of the panel's Usage tab;
- :class:`BearerTokenKeeper`, :func:`write_token_file`: the user's IAM access token
  kept in ``$BEARER_TOKEN_FILE`` (:mod:`.bearer_token`).

When jupyter-server loads the extension (:func:`_load_jupyter_server_extension`), it
adds the panel's handlers under ``{base_url}jhub-af/``: the Dask tab (:mod:`.dask`),
the Data tab (:mod:`.rucio`) and the Usage tab (:mod:`.usage`), all built on
:mod:`.api` (the panel's one handler base ``PanelHandler``, the ``@panel_api``
decorator and ``PanelError``, so that every error is ``{"error", "message"}``); under
JupyterHub also the binary-safe channel af-ssh runs commands and SFTP through
(:mod:`.ssh_channel`, :mod:`.terminal_exit`) and the bearer-token keeper. It is
enabled automatically when jhub_af is installed.
"""

from __future__ import annotations

import os
from pathlib import Path

from .bearer_token import BearerTokenKeeper, write_token_file
from .channel_protocol import (
    CHANNEL_ROUTE,
    EOF_FRAME,
    TERMINAL_EXIT_ROUTE,
    BadChannelRequest,
    ChannelEnd,
    ChannelFrame,
    ChannelRequest,
    clamp_pty_size,
    data_frame,
    is_pty_size,
    parse_channel_end,
    parse_channel_request,
    parse_terminal_exit,
    resize_frame,
)
from .hubconfig import usage_hub_config

__all__ = [
    "CHANNEL_ROUTE",
    "EOF_FRAME",
    "TERMINAL_EXIT_ROUTE",
    "BadChannelRequest",
    "BearerTokenKeeper",
    "ChannelEnd",
    "ChannelFrame",
    "ChannelRequest",
    "clamp_pty_size",
    "data_frame",
    "is_pty_size",
    "parse_channel_end",
    "parse_channel_request",
    "parse_terminal_exit",
    "resize_frame",
    "usage_hub_config",
    "write_token_file",
]


def _jupyter_server_extension_points():
    return [{"module": "jhub_af.lab"}]


def _load_jupyter_server_extension(serverapp):
    """Add the panel's handlers, and under JupyterHub af-ssh's channel and the token keeper.

    Called by jupyter-server when it loads the extension (enabled by
    ``jupyter-config/jupyter_server_config.d/jhub_af.json``).
    """
    from tornado.ioloop import IOLoop

    api_url = os.environ.get("JUPYTERHUB_API_URL")
    api_token = os.environ.get("JUPYTERHUB_API_TOKEN")
    user = os.environ.get("JUPYTERHUB_USER")
    _add_rucio_handlers(serverapp)  # the panel's Data tab (works outside JupyterHub too)
    _add_panel_handlers(serverapp)  # the panel's Dask and Usage tabs (same)
    if not (api_url and api_token and user):
        return  # not under JupyterHub
    _add_ssh_handlers(serverapp, user)
    token_file = os.environ.get("BEARER_TOKEN_FILE")
    if not token_file:
        token_file = str(Path(serverapp.runtime_dir) / "bearer_token")
        # kernels and terminals started from now on inherit it
        os.environ["BEARER_TOKEN_FILE"] = token_file
    keeper = BearerTokenKeeper(api_url, api_token, user, Path(token_file), parent=serverapp)
    # the event loop runs only once the server starts
    IOLoop.current().add_callback(keeper.start)
    serverapp.log.info("jhub_af: keeping the IAM bearer token in %s", token_file)


def _add_ssh_handlers(serverapp, user: str) -> None:
    """af-ssh's binary channel and the terminals' exit statuses."""
    from tornado.ioloop import IOLoop

    from .ssh_channel import channel_handlers
    from .terminal_exit import ExitRecorder, exit_handlers

    recorder = ExitRecorder()
    handlers = channel_handlers(serverapp, user) + exit_handlers(serverapp, recorder)
    serverapp.web_app.add_handlers(".*$", handlers)
    # the terminals extension may load after this one: attach once the server runs
    IOLoop.current().add_callback(
        lambda: recorder.attach(serverapp.web_app.settings.get("terminal_manager"))
    )


def _add_rucio_handlers(serverapp) -> None:
    """The panel's Data tab: ``{base_url}jhub-af/rucio/`` (jhub_af.lab.rucio)."""
    from .rucio import rucio_handlers

    serverapp.web_app.add_handlers(".*$", rucio_handlers(serverapp))


def _add_panel_handlers(serverapp) -> None:
    """The panel's Dask and Usage tabs: ``{base_url}jhub-af/dask/`` (jhub_af.lab.dask)
    and ``{base_url}jhub-af/usage`` (jhub_af.lab.usage)."""
    from .dask import dask_handlers
    from .usage import usage_handlers

    serverapp.web_app.add_handlers(".*$", dask_handlers(serverapp) + usage_handlers(serverapp))
