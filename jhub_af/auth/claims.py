"""From an IdP's claims to VO group paths: the one place that reads group claims.

INDIGO IAM and WLCG tokens carry groups in ``wlcg.groups`` (``/atlas/users``);
IAM's userinfo also has ``groups`` (``atlas/users``); EGI Check-in and others
use ``eduperson_entitlement`` URNs
(``urn:mace:egi.eu:group:atlas:users:role=member#aai.egi.eu``). All of them
become the same group path, ``/atlas/users``. Claims come from outside: a value
that is not a plain group path is dropped, never passed on, and an entitlement
is read only when its namespace (``urn:mace:egi.eu``, ``urn:geant:cern.ch``) is
one the admin trusts: anyone can mint ``urn:geant:<their domain>:group:atlas``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_GROUP_CLAIMS = ("wlcg.groups", "groups", "eduperson_entitlement")

# the namespaces whose entitlements were read before namespaces were pinned and that
# the docs and tests use: EGI Check-in's, and CERN's GEANT namespace
DEFAULT_ENTITLEMENT_NAMESPACES = ("urn:mace:egi.eu", "urn:geant:cern.ch")

# AARC-G002: <namespace>:group:<VO>[:<subgroup>...][:role=<role>]#<group authority>
_NAMESPACE = re.compile(r"^urn(?::[A-Za-z0-9][A-Za-z0-9._-]*)+$")
_AUTHORITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def entitlement_pattern(namespace: str) -> str:
    """The regular expression that reads the group out of an entitlement of ``namespace``.

    ``namespace`` is a URN namespace, ``urn:mace:egi.eu`` or ``urn:geant:cern.ch``,
    optionally followed by ``#<group authority>`` (``urn:mace:egi.eu#aai.egi.eu``),
    which then must end the entitlement; without it any authority (or none) is
    accepted. Raises ValueError for anything else (a wildcard, ``:group:`` in the
    namespace, an empty string). Called by ``IAMAuthenticator`` for each entry of
    its ``entitlement_namespaces``.
    """
    if not isinstance(namespace, str):
        raise ValueError(f"{namespace!r} is not a string")
    urn, hashed, authority = namespace.strip().partition("#")
    if not _NAMESPACE.fullmatch(urn) or urn.endswith(":group") or ":group:" in urn:
        raise ValueError(
            f"{namespace!r} is not a URN namespace such as 'urn:mace:egi.eu' or "
            "'urn:geant:cern.ch' (the part before ':group:')"
        )
    if hashed and not _AUTHORITY.fullmatch(authority):
        raise ValueError(f"{namespace!r}: the group authority after '#' must be a host name")
    tail = "#" + re.escape(authority) if hashed else "(?:#.*)?"
    # the VO and subgroups sit before ":role=" and "#authority"; ":" separates levels
    return rf"^{re.escape(urn)}:group:(?P<group>[^#]+?)(?::role=[^:#]*)?{tail}$"


DEFAULT_ENTITLEMENT_PATTERNS = tuple(map(entitlement_pattern, DEFAULT_ENTITLEMENT_NAMESPACES))

# a group path: segments of letters, digits, '.', '_', '-'
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_GROUP_LENGTH = 255
MAX_GROUPS = 1000


def normalize_group(value: object) -> str | None:
    """``atlas/users``, ``/atlas/users/`` -> ``/atlas/users``; None if not a group path."""
    if not isinstance(value, str):
        return None
    segments = [s for s in value.strip().split("/") if s]
    if not segments or not all(_SEGMENT.fullmatch(s) for s in segments):
        return None
    path = "/" + "/".join(segments)
    return path if len(path) <= MAX_GROUP_LENGTH else None


def group_from_entitlement(value: object, patterns: Iterable[str]) -> str | None:
    """The group path in an entitlement URN, or None when no pattern matches."""
    if not isinstance(value, str):
        return None
    for pattern in patterns:
        match = re.match(pattern, value)
        if match:
            return normalize_group(match.group("group").replace(":", "/"))
    return None


@dataclass(frozen=True)
class ClaimedGroups:
    """The groups read from claims, and which of the configured claims were present."""

    groups: tuple[str, ...]
    claims_present: tuple[str, ...]
    dropped: int = 0


def groups_from_claims(
    claims: Mapping,
    claim_names: Iterable[str] = DEFAULT_GROUP_CLAIMS,
    entitlement_patterns: Iterable[str] = DEFAULT_ENTITLEMENT_PATTERNS,
) -> ClaimedGroups:
    """Union of the groups in every configured claim, normalised, sorted and bounded.

    ``claims`` is a flat dict of claims: ``claims["wlcg.groups"]``, not
    ``claims["wlcg"]["groups"]`` (the claim name has a dot in it).
    """
    found: set[str] = set()
    present = []
    dropped = 0
    patterns = tuple(entitlement_patterns)
    for name in claim_names:
        if name not in claims:
            continue
        present.append(name)
        values = claims[name]
        if isinstance(values, str):
            values = values.split()  # some IdPs send a space-separated string
        if not isinstance(values, list):
            dropped += 1
            continue
        for value in values[:MAX_GROUPS]:
            if name == "eduperson_entitlement":
                group = group_from_entitlement(value, patterns)
            else:
                group = normalize_group(value)
            if group is None:
                dropped += 1
            else:
                found.add(group)
    return ClaimedGroups(tuple(sorted(found)[:MAX_GROUPS]), tuple(present), dropped)
