"""The one way the panel's handlers answer: a base, a decorator, an error type.

- :class:`PanelError`: a status and a sentence for the physicist; the Dask, Data and
  Usage tabs' clients and handlers raise it and nothing else.
- :class:`PanelHandler`: the base of every handler (jupyter-server's ``APIHandler``,
  so its authentication and XSRF check), with :meth:`~PanelHandler.answer` and
  :meth:`~PanelHandler.json_body`.
- :func:`panel_api`: decorates every handler method: authentication, authorization
  of the tab's ``auth_resource``, and errors answered as :func:`error_body`.

Every error, the panel's own and jupyter-server's (no login, no XSRF token, not
authorized), is ``{"error": <code>, "message": <sentence>}``: the code is the HTTP
status's reason in snake case (``"service_unavailable"``), the sentence says what to
do next. The TypeScript side shows ``message``.
"""

from __future__ import annotations

import functools
import json
from http import HTTPStatus

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

MAX_BODY_BYTES = 16 * 1024

NOT_AUTHORIZED = (
    "This notebook server's settings do not let you use this part of the facility "
    "panel; ask the facility's admins if you need it."
)


class PanelError(Exception):
    """A refusal or failure to show the physicist, with the HTTP status to answer.

    ``status`` is the panel's answer (400 bad input, 401 credentials to renew, 403
    refused, 404 unknown, 409 conflict, 502 a service answered wrongly, 503 a service
    is down or not configured); ``message`` is the sentence shown in the panel.
    Raised by the tabs' clients and handlers; answered by :func:`panel_api`.
    """

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def error_code(status: int) -> str:
    """The ``error`` field for ``status``: its HTTP reason in snake case
    (503 -> ``"service_unavailable"``), ``"error"`` for a status HTTP does not name."""
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def error_body(status: int, message: str) -> dict:
    """The panel's one JSON error shape: ``{"error": error_code(status), "message": message}``."""
    return {"error": error_code(status), "message": message}


class PanelHandler(APIHandler):
    """The base of the Dask, Data and Usage tabs' handlers.

    Subclasses set ``auth_resource`` (the resource jupyter-server's authorizer is
    asked about, ``"jhub-af:<tab>"``) and decorate each method with :func:`panel_api`.
    """

    auth_resource = "jhub-af"

    def answer(self, body: dict, status: int = 200) -> None:
        """Finish the request with ``body`` as JSON and ``status``."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def json_body(self) -> dict:
        """The request's body, a JSON object of at most ``MAX_BODY_BYTES`` (``{}`` when
        empty). Raises :class:`PanelError` (400) saying what is wrong with it."""
        if len(self.request.body) > MAX_BODY_BYTES:
            raise PanelError(400, "The request is too large.")
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise PanelError(400, "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise PanelError(400, "The request body must be a JSON object.")
        return body

    def write_error(self, status_code: int, **kwargs) -> None:
        """jupyter-server's own refusals (no login, no XSRF token, not authorized) and
        unexpected failures, in the panel's shape. Called by tornado."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = self._reason
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(error_body(status_code, message)))


def panel_api(method):
    """Decorate a :class:`PanelHandler` method (``async def get(self, ...)``).

    The request must be authenticated (jupyter-server answers 403 otherwise) and
    authorized for the handler's ``auth_resource`` (403 with :data:`NOT_AUTHORIZED`);
    a :class:`PanelError` raised by the method is answered as :func:`error_body` with
    its status. What the method finishes with :meth:`PanelHandler.answer` is the answer.
    """

    @functools.wraps(method)
    async def answered(self: PanelHandler, *args, **kwargs):
        try:
            return await method(self, *args, **kwargs)
        except PanelError as e:
            self.answer(error_body(e.status, e.message), e.status)

    return web.authenticated(authorized(message=NOT_AUTHORIZED)(answered))
