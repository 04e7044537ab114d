"""Login throughput through a real IdP: IAMAuthenticator vs oauthenticator's GenericOAuthenticator.

One IdP (node oidc-provider, tests/idp/idp.mjs) with 200 accounts; two hubs
started side by side, one with each authenticator, both keeping encrypted
auth_state and managing groups from ``wlcg.groups``. One sample: 200 users log
in through the whole browser-less flow (hub -> IdP login and consent forms ->
hub callback), 10 at a time; the result is logins per second. IAMAuthenticator
does more per login (discovery, JWKS, ID token signature and nonce, VO rule),
which is what the ratio shows. The sides alternate so that noise hits both.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import (
    free_port,
    generic_oauth_config,
    iam_hub_config,
    iam_hub_env,
    oidc_login_response,
    start_hub,
    start_idp,
)

USERS = 200
CONCURRENCY = 10

SPEC = {
    "what": f"logins/s through a real IdP ({USERS} users, {CONCURRENCY} at a time)",
    "anchor": "GenericOAuthenticator, same IdP",
    "unit": "logins/s",
    "target": ">= 0.9 (higher is better)",
}


def _login(hub_url: str, username: str) -> None:
    _, r = oidc_login_response(hub_url, username)
    if r.status_code != 302:
        raise RuntimeError(f"login of {username} at {hub_url}: HTTP {r.status_code}")


def throughput(hub_url: str) -> float:
    names = [f"user{i:03d}" for i in range(USERS)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda name: _login(hub_url, name), names))
    return USERS / (time.perf_counter() - t0)


def run(repeats: int) -> tuple[list[float], list[float]]:
    accounts = {
        f"user{i:03d}": {
            "sub": f"sub-{i:03d}",
            "preferred_username": f"user{i:03d}",
            "wlcg.groups": ["/atlas", "/atlas/users"],
        }
        for i in range(USERS)
    }
    ports = {"iam": free_port(), "generic": free_port()}
    with tempfile.TemporaryDirectory(prefix="bench-iam-") as tmp:
        root = Path(tmp)
        idp = start_idp(
            root / "idp",
            accounts,
            [f"http://127.0.0.1:{p}/hub/oauth_callback" for p in ports.values()],
        )
        hubs = []
        try:
            env = iam_hub_env(idp, secrets.token_hex(32))
            homes = str(root / "homes" / "{username}")
            ours_hub = start_hub(
                root / "iam", iam_hub_config(idp, ports["iam"], homes), port=ports["iam"], env=env
            )
            hubs.append(ours_hub)
            anchor_hub = start_hub(
                root / "generic",
                generic_oauth_config(idp, ports["generic"]),
                port=ports["generic"],
                env=env,
            )
            hubs.append(anchor_hub)
            ours, anchor = [], []
            for i in range(repeats):
                ours.append(throughput(ours_hub.url))
                anchor.append(throughput(anchor_hub.url))
                print(
                    f"   run {i + 1}: IAM {ours[-1]:.1f}/s, generic {anchor[-1]:.1f}/s", flush=True
                )
            return ours, anchor
        finally:
            for hub in hubs:
                hub.stop()
            idp.stop()
