"""af-ssh: SSH on demand with a hub token as the password.

``ssh alice@hub -p 8022`` (password: a token from /hub/token) starts alice's server
if needed and opens a shell in a Jupyter terminal; ``ssh alice@hub CMD``, sftp, scp
and rsync run in her server over the binary channel of ``jhub_af.lab``. The path of
a login: :mod:`.server` (asyncssh) -> :mod:`.login` (token -> owner, with
:mod:`.names`, :mod:`.scopes`, :mod:`.limits`) -> :mod:`.starting` (server ready,
with progress, through :mod:`.hub`) -> :mod:`.session` -> :mod:`.bridges`.
The hub's side: :func:`ssh_hub_config` (the ``custom:jhub-af:ssh`` scope a token
needs, given to users and not to their servers).
"""

from .app import AFSSH, main
from .hubconfig import ssh_hub_config
from .names import BadLoginName, LoginName, parse_login
from .scopes import SSH_SCOPE, SSH_SCOPES

__all__ = [
    "AFSSH",
    "SSH_SCOPE",
    "SSH_SCOPES",
    "BadLoginName",
    "LoginName",
    "main",
    "parse_login",
    "ssh_hub_config",
]
