"""A login for the demo: a small table of users with VO groups, one shared password.

It stands in for the experiment's IAM so that the rest of the facility (profiles,
quotas, Dask limits) can be tried on one machine. It is labelled "demo" on the
login page and must never guard a real facility.
"""

from __future__ import annotations

import hmac

from jupyterhub.auth import Authenticator
from traitlets import Bool, Dict, List, Unicode, default

from jhub_af.auth import LoginDenied, admit_by_vo

DEMO_USERS = {
    "alice": {"groups": ["/atlas", "/atlas/users"]},
    "bob": {"groups": ["/cms", "/cms/gpu"]},
    "carol": {"groups": []},
    "admin": {"groups": ["/atlas"], "admin": True},
}


def demo_user_groups(c) -> list[str]:
    """The VO groups of the demo users a hub config ``c`` signs in, sorted; [] when its
    authenticator is not :class:`DemoAuthenticator` (by class or as ``af-demo``).

    Called by `jhub-af check-config`, so that the demo users' groups count as known.
    """
    authenticator = c.JupyterHub.get("authenticator_class")
    if getattr(authenticator, "__name__", authenticator) not in ("DemoAuthenticator", "af-demo"):
        return []
    users = c.DemoAuthenticator.get("demo_users", DEMO_USERS)
    return sorted({group for entry in users.values() for group in entry.get("groups", [])})


class DemoAuthenticator(Authenticator):
    """Password login against a fixed table of demo users and their VO groups."""

    demo_users = Dict(
        default_value=DEMO_USERS,
        config=True,
        help="""
        The demo's users: a dict from username to ``{"groups": [...], "admin": bool}``.

        Groups are VO paths as IAM writes them in ``wlcg.groups`` (``/atlas``,
        ``/atlas/users``); they become JupyterHub groups. A user with no VO group
        is refused with a page that says why. Default: alice (/atlas, /atlas/users),
        bob (/cms, /cms/gpu), carol (no VO) and admin (/atlas, hub admin).
        """,
    )

    demo_password = Unicode(
        "demo",
        config=True,
        help="""
        The one password every demo user signs in with (default ``demo``).
        The login page shows it: this login is for trying the facility only.
        """,
    )

    allowed_vos = List(
        Unicode(),
        default_value=["/atlas", "/cms"],
        config=True,
        help="""
        VOs whose members may sign in, as top-level group paths (``/atlas``).
        Members of a subgroup (``/atlas/users``) count as members of its VO.
        An empty list admits members of any VO, but never a user with no VO.
        """,
    )

    @default("manage_groups")
    def _default_manage_groups(self):
        return True

    @default("allow_all")
    def _default_allow_all(self):
        # who may sign in is decided by the VO rule in authenticate()
        return True

    @default("login_service")
    def _default_login_service(self):
        return ""

    show_demo_banner = Bool(
        True,
        config=True,
        help="Show the 'demo login' banner, with the users and the password, on the login page.",
    )

    async def authenticate(self, handler, data):
        """The demo user ``data["username"]`` with their groups and admin flag, or None
        for an unknown name or a wrong password. Raises LoginDenied (the page says why)
        for a user the VO rule refuses. Called by JupyterHub's login handler."""
        name = self.normalize_username(data.get("username", ""))
        password = data.get("password", "")
        entry = self.demo_users.get(name)
        if entry is None or not hmac.compare_digest(
            password.encode("utf8"), self.demo_password.encode("utf8")
        ):
            # the hub's normal "Invalid username or password"
            return None
        groups = list(entry.get("groups", []))
        admission = admit_by_vo(groups, self.allowed_vos)
        if not admission.admitted:
            self.log.warning("Demo login of %s refused: %s", name, admission.reason)
            raise LoginDenied(admission.reason, admission.advice)
        return {"name": name, "groups": groups, "admin": bool(entry.get("admin", False))}
