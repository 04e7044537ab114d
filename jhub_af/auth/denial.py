"""A refused login that tells the user why, on JupyterHub's own error page."""

from __future__ import annotations

from tornado import web


class LoginDenied(web.HTTPError):
    """HTTP 403 (or ``status``) whose page says why the login was refused and what to do next.

    JupyterHub renders ``reason`` as the page title and ``jupyterhub_message``
    as its text (both escaped by the template). Raise it from
    ``Authenticator.authenticate``.
    """

    def __init__(self, reason: str, advice: str, status: int = 403):
        # tornado logs the log message: it holds the fixed reason, no user input
        super().__init__(status, "login refused: %s", reason, reason=reason)
        self.jupyterhub_message = advice


class DenialPageMixin:
    """Mix in front of a login handler that raises :class:`LoginDenied`.

    JupyterHub 6 titles its error page with the exception's ``reason``; JupyterHub 5
    titles it with the HTTP status text ("403 : Forbidden"), which would hide what
    the refusal is about. This gives the page the refusal's own title on both.
    """

    def render_template(self, name, sync=False, **ns):
        """JupyterHub's ``render_template``, with ``status_message`` set to a
        :class:`LoginDenied`'s ``reason``; returns what it returns. Called by
        JupyterHub's ``write_error`` and whenever the handler renders a page."""
        exception = ns.get("exception")
        if isinstance(exception, LoginDenied) and exception.reason:
            ns["status_message"] = exception.reason
        return super().render_template(name, sync=sync, **ns)
