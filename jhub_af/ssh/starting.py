"""Find the user's server, starting it (with progress on stderr) when it is not running."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .hub import HubClient, HubError
from .login import Login

Say = Callable[[str], Awaitable[None]]


async def server_url(hub: HubClient, hub_url: str, login: Login, say: Say, timeout: float) -> str:
    """The URL of the user's default server (through the proxy), once it is ready.

    Starts the server (with the login's profile) when it is stopped and the token may
    start it, telling the user its progress through ``say``. Warns, without stopping
    it, when it already runs another profile. Raises HubError with a sentence for the
    user when it is stopped and may not be started, or fails to start within
    ``timeout`` seconds. Called by :class:`jhub_af.ssh.session.Session`.
    """
    name = login.name.user
    model = await hub.user(login.token, name)
    server = model.get("servers", {}).get("")
    if server and server.get("ready"):
        if login.name.profile:
            running = (server.get("user_options") or {}).get("profile")
            if running and running != login.name.profile:
                await say(
                    f"Your server is already running with profile {running!r}; "
                    f"stop it at {hub_url}/hub/home to use {login.name.profile!r}.\r\n"
                )
        return hub_url + server["url"]
    if not login.may_start:
        raise HubError(
            f"Your server is not running and this token may not start it. "
            f"Start it at {hub_url}/hub/home, or use a token with the 'servers' scope."
        )
    if not model.get("pending"):
        options = {"profile": login.name.profile} if login.name.profile else {}
        profile = f" with profile {login.name.profile!r}" if login.name.profile else ""
        await say(f"Starting your server{profile} ...\r\n")
        await hub.start(login.token, name, options)
    messages: list[dict] = []

    def on_event(event: dict) -> None:
        messages.append(event)

    follow = asyncio.ensure_future(hub.progress(login.token, name, on_event, timeout))
    shown = 0
    try:
        while not follow.done():
            await asyncio.wait([follow], timeout=0.25)
            for event in messages[shown:]:
                if event.get("message"):
                    await say(f"[{event.get('progress', 0):>3}%] {event['message']}\r\n")
                if event.get("failed"):
                    raise HubError(event.get("message") or "Your server failed to start.")
            shown = len(messages)
        if follow.exception() is not None:
            # no progress to show (e.g. the start already ended): the state below says
            await say(f"af-ssh: {follow.exception()}\r\n")
    finally:
        follow.cancel()
    model = await hub.user(login.token, name)
    server = model.get("servers", {}).get("")
    if not server or not server.get("ready"):
        raise HubError(f"Your server did not start; see {hub_url}/hub/home.")
    return hub_url + server["url"]
