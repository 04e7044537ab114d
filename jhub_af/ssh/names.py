"""SSH login names: ``alice`` or ``alice+large`` (a profile slug after the ``+``).

Names are checked before anything else, so odd characters never reach the hub,
the logs or a URL. A name the pattern refuses is a failed login like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

USER = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
# the profile catalogue's slug pattern (jhub_af.spawner re-checks the profile at start)
PROFILE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")


class BadLoginName(ValueError):
    """The login name is not one af-ssh accepts."""


@dataclass(frozen=True)
class LoginName:
    """A checked login name: the hub user, and the profile asked for (or None)."""

    user: str
    profile: str | None = None


def parse_login(login: str) -> LoginName:
    """``alice`` -> (alice, None); ``alice+large`` -> (alice, large); else BadLoginName."""
    user, plus, profile = login.partition("+")
    if not USER.fullmatch(user):
        raise BadLoginName("not a hub user name")
    if plus and not PROFILE.fullmatch(profile):
        raise BadLoginName("not a profile name after '+'")
    return LoginName(user, profile if plus else None)


def shown(login: str) -> str:
    """A login name as the logs may show it: printable ASCII, at most 64 characters."""
    text = ascii(login[:64])
    return text + ("..." if len(login) > 64 else "")
