"""Keep ``$BEARER_TOKEN_FILE`` holding the user's current IAM access token.

WLCG Bearer Token Discovery: tools (XRootD, Rucio, gfal, davix) read the token from
the file named by ``BEARER_TOKEN_FILE``, which the extension sets at start so that
kernels and terminals inherit it; :class:`BearerTokenKeeper` rewrites it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Float
from traitlets.config import LoggingConfigurable


def write_token_file(path: Path, token: str) -> None:
    """Replace ``path`` atomically with ``token``, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bearer-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class BearerTokenKeeper(LoggingConfigurable):
    """Fetches the token from the hub and rewrites the file, until stopped.

    The token comes from the hub's ``/api/jhub-af/users/{name}/bearer-token``, asked
    with the server's own API token; the refresh token never leaves the hub. Started
    by the extension's loader under JupyterHub. Configure it in the single-user
    server's config, e.g. ``c.BearerTokenKeeper.margin_seconds = 300``.
    """

    margin_seconds = Float(
        120,
        min=0,
        config=True,
        help="Fetch a new token this many seconds before the current one expires (default 120).",
    )
    retry_seconds = Float(
        30,
        min=1,
        config=True,
        help="Wait this long after a failed fetch, and at least this long between fetches.",
    )
    max_sleep_seconds = Float(
        600,
        min=1,
        config=True,
        help="Fetch at least this often, even when the token lasts longer (default 600).",
    )

    def __init__(self, api_url: str, api_token: str, user: str, token_file: Path, **kwargs):
        super().__init__(**kwargs)
        self.url = f"{api_url.rstrip('/')}/jhub-af/users/{quote(user, safe='')}/bearer-token"
        self._api_token = api_token
        self.token_file = token_file
        self._task: asyncio.Task | None = None

    def next_fetch_in(self, expires_at: float | None, now: float) -> float:
        """Seconds until the next fetch: before expiry, never busy-looping, never too rare."""
        if not expires_at:
            return self.max_sleep_seconds
        ahead = expires_at - now - self.margin_seconds
        return max(self.retry_seconds, min(self.max_sleep_seconds, ahead))

    async def fetch_once(self) -> float | None:
        """Fetch and write the token; return its expiry, or raise."""
        request = HTTPRequest(
            self.url, headers={"Authorization": f"token {self._api_token}"}, request_timeout=30
        )
        response = await AsyncHTTPClient().fetch(request)
        body = json.loads(response.body)
        write_token_file(self.token_file, body["access_token"])
        return body.get("expires_at")

    async def run(self) -> None:
        """Fetch and rewrite the token for the whole session, retrying after failures.

        Returns only when the hub hands out no bearer tokens (404: no IAM login);
        raises nothing else (a failure is logged and retried). Runs as :meth:`start`'s task.
        """
        while True:
            try:
                expires_at = await self.fetch_once()
                delay = self.next_fetch_in(expires_at, time.time())
                self.log.debug("Bearer token written; next fetch in %.0fs", delay)
            except HTTPClientError as e:
                if e.code == 404:
                    self.log.info("This hub hands out no IAM bearer tokens (no IAM login)")
                    return
                # 401: the IAM session ended; the user must sign in to the hub again
                self.log.warning("Could not fetch the bearer token: HTTP %s", e.code)
                delay = self.retry_seconds
            except Exception as e:  # keep trying: the hub may be restarting
                self.log.warning("Could not fetch the bearer token: %s", type(e).__name__)
                delay = self.retry_seconds
            await asyncio.sleep(delay)

    def start(self) -> None:
        """Run :meth:`run` as a task of the running event loop. Called by the extension."""
        self._task = asyncio.ensure_future(self.run())

    def stop(self) -> None:
        """Cancel the task started by :meth:`start` (no-op if not started)."""
        if self._task:
            self._task.cancel()
