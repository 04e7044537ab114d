"""The exit status of a Jupyter terminal's shell, which the terminal websocket never says.

When a terminal's shell exits, terminado sends ``["disconnect", 1]`` whatever the
status was, and forgets the terminal. af-ssh bridges an interactive ``ssh`` to a
Jupyter terminal and must return the shell's real exit status, so this module
records it when terminado closes the pty (:class:`ExitRecorder`), and serves it to
the same callers as the terminal itself (:class:`TerminalExitHandler`, at
:data:`~.channel_protocol.TERMINAL_EXIT_ROUTE`).
"""

from __future__ import annotations

from collections import OrderedDict

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler
from tornado import web

from .channel_protocol import TERMINAL_EXIT_ROUTE, terminal_exit_body

KEEP = 256  # the most recent exits kept


class ExitRecorder:
    """Wraps a terminal manager's ``on_eof`` to keep each terminal's exit status."""

    def __init__(self):
        self.statuses: OrderedDict[str, int] = OrderedDict()
        self.manager = None

    def attach(self, manager) -> None:
        """Start recording the exits of ``manager``'s terminals (terminado's manager).

        Does nothing for None or the manager already attached, so it may be called on
        every request. Called by the extension once the server runs, and by
        :class:`TerminalExitHandler` (the terminals extension may load after ours).
        """
        if manager is None or self.manager is manager:
            return
        self.manager = manager
        original = manager.on_eof

        def on_eof(ptywclients):
            original(ptywclients)  # closes the pty, which reaps the shell
            proc = ptywclients.ptyproc
            status = proc.exitstatus
            if status is None and proc.signalstatus is not None:
                status = 128 + proc.signalstatus
            self.statuses[str(ptywclients.term_name)] = status if status is not None else -1
            while len(self.statuses) > KEEP:
                self.statuses.popitem(last=False)

        manager.on_eof = on_eof


class TerminalExitHandler(APIHandler):
    """``GET``: ``{"exit_status": N}`` once the terminal's shell has exited, else 404."""

    auth_resource = "terminals"

    def initialize(self, recorder: ExitRecorder):
        """Keep ``recorder``, the one given by :func:`exit_handlers`. Called by tornado
        for each request."""
        self.recorder = recorder

    @web.authenticated
    async def get(self, name):
        """The exit status of terminal ``name``; 403 without ``read`` on ``terminals``.

        Called by af-ssh's ``TerminalBridge.exit_status`` once the terminal disconnected.
        """
        if not await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", "terminals")
        ):
            raise web.HTTPError(403)
        self.recorder.attach(self.settings.get("terminal_manager"))
        if name not in self.recorder.statuses:
            raise web.HTTPError(404, "This terminal is running or unknown.")
        self.finish(terminal_exit_body(self.recorder.statuses[name]))


def exit_handlers(serverapp, recorder: ExitRecorder) -> list[tuple]:
    """The exit-status route, for ``web_app.add_handlers``; called by the extension's loader."""
    route = serverapp.base_url.rstrip("/") + TERMINAL_EXIT_ROUTE.format(name="([^/]+)")
    return [(route, TerminalExitHandler, {"recorder": recorder})]
