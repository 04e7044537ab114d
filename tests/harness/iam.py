"""A hub that signs users in with IAMAuthenticator against the test IdP."""

from __future__ import annotations

import secrets

import requests

from .hub import local_spawner_config


def iam_hub_config(idp, hub_port: int, home_template: str, extra: str = "") -> str:
    """Config text for a hub at ``hub_port`` using IAMAuthenticator with ``idp``.

    Notebooks are JupyterHub's local processes (with jhub_af's server extension,
    so $BEARER_TOKEN_FILE is kept fresh); a service ``tests`` whose token comes
    from $TEST_ADMIN_TOKEN may read users' auth state. The client secret comes
    from $TEST_OAUTH_CLIENT_SECRET, never the config file.
    """
    return (
        local_spawner_config(home_template)
        + f"""
import os
from jhub_af.auth import CUSTOM_SCOPES, bearer_token_roles

c.JupyterHub.authenticator_class = "af-iam"
c.IAMAuthenticator.issuer = {idp.issuer!r}
c.IAMAuthenticator.client_id = {idp.client_id!r}
c.IAMAuthenticator.client_secret = os.environ["TEST_OAUTH_CLIENT_SECRET"]
c.IAMAuthenticator.oauth_callback_url = "http://127.0.0.1:{hub_port}/hub/oauth_callback"
c.IAMAuthenticator.allowed_vos = ["/atlas", "/cms"]
c.IAMAuthenticator.admin_groups = {{"/atlas/admins"}}
c.JupyterHub.custom_scopes = CUSTOM_SCOPES
c.JupyterHub.services = [{{"name": "tests", "api_token": os.environ["TEST_ADMIN_TOKEN"]}}]
c.JupyterHub.load_roles = bearer_token_roles() + [
    {{"name": "tests", "services": ["tests"],
      "scopes": ["admin:users", "admin:auth_state", "admin:servers"]}},
]
"""
        + extra
    )


def generic_oauth_config(idp, hub_port: int) -> str:
    """Config text for plain oauthenticator GenericOAuthenticator with ``idp`` (the anchor
    IAMAuthenticator is compared with): endpoints, encrypted auth_state, groups from
    ``wlcg.groups``; the secret from $TEST_OAUTH_CLIENT_SECRET."""
    d = idp.discovery()
    return f"""
import os
c.JupyterHub.authenticator_class = "generic-oauth"
c.GenericOAuthenticator.client_id = {idp.client_id!r}
c.GenericOAuthenticator.client_secret = os.environ["TEST_OAUTH_CLIENT_SECRET"]
c.GenericOAuthenticator.oauth_callback_url = "http://127.0.0.1:{hub_port}/hub/oauth_callback"
c.GenericOAuthenticator.authorize_url = {d["authorization_endpoint"]!r}
c.GenericOAuthenticator.token_url = {d["token_endpoint"]!r}
c.GenericOAuthenticator.userdata_url = {d["userinfo_endpoint"]!r}
c.GenericOAuthenticator.scope = ["openid", "profile", "email", "wlcg.groups", "offline_access"]
c.GenericOAuthenticator.username_claim = "preferred_username"
c.GenericOAuthenticator.allow_all = True
c.GenericOAuthenticator.enable_auth_state = True
c.GenericOAuthenticator.manage_groups = True
c.GenericOAuthenticator.auth_state_groups_key = (
    lambda auth_state: auth_state["oauth_user"].get("wlcg.groups", [])
)
"""


def iam_hub_env(idp, admin_token: str) -> dict[str, str]:
    return {
        "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
        "TEST_OAUTH_CLIENT_SECRET": idp.client_secret,
        "TEST_ADMIN_TOKEN": admin_token,
    }


def admin_get(hub_url: str, admin_token: str, path: str) -> requests.Response:
    """GET ``/hub/api{path}`` with the tests service's token."""
    return requests.get(
        f"{hub_url}/hub/api{path}", headers={"Authorization": f"token {admin_token}"}, timeout=10
    )
