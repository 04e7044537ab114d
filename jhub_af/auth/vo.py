"""VO membership: which virtual organisation a group belongs to, and who is admitted.

A VO group is a path such as ``/atlas/users`` (the form INDIGO IAM puts in the
``wlcg.groups`` claim). Its VO is the first segment, ``/atlas``; every subgroup
counts as membership of its VO.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def vo_of(group: str) -> str | None:
    """The VO that ``group`` belongs to, or None when it is not a VO path.

    >>> vo_of("/atlas/users")
    '/atlas'
    >>> vo_of("/cms")
    '/cms'
    >>> vo_of("staff") is None
    True
    """
    if not group.startswith("/"):
        return None
    top = group.strip("/").split("/", 1)[0]
    return f"/{top}" if top else None


def vos_of(groups: Iterable[str]) -> tuple[str, ...]:
    """The distinct VOs of ``groups``, sorted."""
    return tuple(sorted({vo for vo in map(vo_of, groups) if vo}))


@dataclass(frozen=True)
class VOAdmission:
    """The outcome of the VO rule for one user.

    ``reason`` is a short title and ``advice`` a sentence that tells the user
    what to do; both are None when the user is admitted.
    """

    admitted: bool
    vos: tuple[str, ...]
    reason: str | None = None
    advice: str | None = None


def admit_by_vo(groups: Iterable[str], allowed_vos: Iterable[str] = ()) -> VOAdmission:
    """Admit a user who belongs to at least one allowed VO.

    An empty ``allowed_vos`` admits members of any VO, but never a user with
    no VO at all.
    """
    allowed = tuple(sorted({vo_of(v) or v for v in allowed_vos}))
    vos = vos_of(groups)
    if not vos:
        where = f" ({', '.join(allowed)})" if allowed else ""
        return VOAdmission(
            admitted=False,
            vos=vos,
            reason="Not a member of any VO",
            advice=(
                "Your account is not a member of any virtual organisation (VO), and this "
                f"facility admits only VO members{where}. Ask your experiment's VO "
                "administrator to add you to the VO in IAM, then sign in again."
            ),
        )
    if allowed and not set(vos) & set(allowed):
        return VOAdmission(
            admitted=False,
            vos=vos,
            reason="VO not admitted here",
            advice=(
                f"You are a member of {', '.join(vos)}, but this facility admits members of "
                f"{', '.join(allowed)} only. Use your own VO's facility, or ask this "
                "facility's admins whether your VO can be added."
            ),
        )
    return VOAdmission(admitted=True, vos=vos)
