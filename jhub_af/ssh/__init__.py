"""af-ssh: SSH on demand with a hub token as the password.

``ssh alice@hub -p 8022`` (password: a token from /hub/token) starts alice's server
if needed and opens a shell in a Jupyter terminal; ``ssh alice@hub CMD``, sftp, scp
and rsync run in her server over the binary channel of ``jhub_af.lab``. The path of
a login: :mod:`.server` (asyncssh) -> :mod:`.login` (token -> owner, with
:mod:`.names`, :mod:`.scopes`, :mod:`.limits`) -> :mod:`.starting` (server ready,
with progress, through :mod:`.hub`) -> :mod:`.session` -> :mod:`.bridges`.
"""

from .app import AFSSH, main
from .names import BadLoginName, LoginName, parse_login

__all__ = ["AFSSH", "BadLoginName", "LoginName", "main", "parse_login"]
