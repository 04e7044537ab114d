"""Run Python in a user's notebook server the way a notebook does: a kernel over
the Jupyter REST API and its websocket channels."""

from __future__ import annotations

import json
import uuid

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


def user_api_token(s: requests.Session, hub_url: str, name: str) -> str:
    """An API token of ``name`` (from their logged-in session) that may use their server."""
    r = s.post(
        f"{hub_url}/hub/api/users/{name}/tokens",
        json={"scopes": [f"access:servers!user={name}"], "expires_in": 3600},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()["token"]


async def run_python(hub_url: str, name: str, token: str, code: str, timeout: float = 60) -> str:
    """Execute ``code`` in a new kernel of ``name``'s server; return what it printed."""
    base = f"{hub_url}/user/{name}/api/kernels"
    headers = {"Authorization": f"token {token}"}
    r = requests.post(base, json={"name": "python3"}, headers=headers, timeout=30)
    r.raise_for_status()
    kernel = r.json()["id"]
    ws_url = f"{base}/{kernel}/channels".replace("http://", "ws://", 1)
    conn = await websocket_connect(HTTPRequest(ws_url, headers=headers, request_timeout=timeout))
    try:
        msg_id = uuid.uuid4().hex
        await conn.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": name,
                        "session": uuid.uuid4().hex,
                        "msg_type": "execute_request",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {"code": code, "silent": False, "stop_on_error": True},
                    "channel": "shell",
                }
            )
        )
        out = []
        while True:
            raw = await conn.read_message()
            if raw is None:
                raise RuntimeError("the kernel's websocket closed")
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                raise RuntimeError("\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
    finally:
        conn.close()
        requests.delete(f"{base}/{kernel}", headers=headers, timeout=30)
