"""The checked profile: :class:`Profile`, the :class:`Choice` a user may make in it,
the :class:`Size` a size choice offers, and :class:`CatalogueError`, raised when a
catalogue entry cannot become a Profile. Made by :mod:`.catalogue`; read by the
spawner, the form, the options and the backends' settings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class CatalogueError(ValueError):
    """The catalogue is wrong; the message names the profile and the field."""


@dataclass(frozen=True)
class Size:
    """A named size a ``size`` choice offers."""

    name: str
    display_name: str
    cores: int
    memory: str


@dataclass(frozen=True)
class Choice:
    """One choice a user may make inside a profile.

    ``image_tag``, ``size`` and ``partition`` pick one of ``options``;
    ``walltime`` is a whole number of hours from ``minimum`` to ``maximum``.
    """

    name: str
    display_name: str
    default: str | int
    options: tuple[str, ...] = ()
    sizes: tuple[Size, ...] = ()
    minimum: int = 0
    maximum: int = 0

    @property
    def is_range(self) -> bool:
        """Whether the choice is a number of hours (walltime), not one of ``options``."""
        return self.name == "walltime"

    def size(self, name: str) -> Size:
        """The size option ``name`` (one of ``options``; StopIteration otherwise)."""
        return next(s for s in self.sizes if s.name == name)


@dataclass(frozen=True)
class Profile:
    """One checked profile of the catalogue (made by :func:`.catalogue.parse_profile`)."""

    slug: str
    display_name: str
    description: str
    backend: str
    image: str = ""
    environment: str = ""
    cvmfs: tuple[str, ...] = ()
    cores: int = 1
    memory: str = "2G"
    cores_guarantee: float | None = None
    memory_guarantee: str = ""
    gpu_type: str = ""
    gpu_count: int = 0
    preemptible: bool = False
    partition: str = ""
    account: str = ""
    qos: str = ""
    walltime_hours: int = 0
    choices: Mapping[str, Choice] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    admins_only: bool = False
    start_note: str = ""

    def visible_to(self, groups: Iterable[str], admin: bool) -> bool:
        """Whether a user in ``groups`` (and hub admin or not) may see and start it."""
        if self.admins_only:
            return admin
        return not self.groups or bool(set(self.groups) & set(groups))

    def who_may_use(self) -> str:
        """Who may start it, for a refusal's sentence: "hub admins" or "members of ..."."""
        if self.admins_only:
            return "hub admins"
        return "members of " + " or ".join(self.groups)
