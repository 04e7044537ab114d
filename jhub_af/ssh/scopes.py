"""Whether a hub token's scopes grant one scope, decided as JupyterHub decides it.

af-ssh runs beside the hub, not inside it: importing JupyterHub's ``check_scopes``
would load JupyterHub and SQLAlchemy (about 750 modules) for a dozen lines of logic.
"""

from __future__ import annotations

from collections.abc import Iterable

# the scope that makes a token an SSH password: users hold it for themselves (the
# ``user`` role), the single-user server's token does not
SSH_SCOPE = "custom:jhub-af:ssh"
# for c.JupyterHub.custom_scopes
SSH_SCOPES = {
    SSH_SCOPE: {
        "description": "Log in to af-ssh (ssh, sftp, scp, rsync) as the user, with this "
        "token as the password.",
    }
}


def has_scope(required: str, scopes: Iterable[str]) -> bool:
    """True if ``scopes`` grant ``required``.

    ``scopes`` are a token's expanded scopes, as ``GET /hub/api/user`` lists them;
    ``required`` is ``base`` or ``base!filter=value``. The answer is that of
    ``bool(jupyterhub.services.auth.check_scopes({required}, scopes))``: an
    unfiltered ``base`` grants every filter of it; ``base!user=U`` grants
    ``base!server=U/NAME`` (a user's servers belong to them); nothing else grants
    across filters (``!group=`` is not resolved: JupyterHub needs its database for
    that). Scope names are compared exactly: ``servers`` does not grant
    ``read:servers`` here; the hub expands roles before it lists them.

    Unlike JupyterHub, a malformed held scope (``base!user=``) is ignored instead of
    raising ValueError; the hub never lists one. Called by
    :meth:`jhub_af.ssh.login.LoginChecker.check`.
    """
    base, _, wanted = required.partition("!")
    held_filters = set()
    for scope in scopes:
        held_base, _, held_filter = scope.partition("!")
        if held_base != base:
            continue
        if not held_filter:
            return True
        held_filters.add(held_filter)
    if not wanted:
        return False  # a filtered scope does not grant the unfiltered one
    if wanted in held_filters:
        return True
    kind, _, value = wanted.partition("=")
    if kind == "server":
        owner = value.partition("/")[0]
        return f"user={owner}" in held_filters
    return False
