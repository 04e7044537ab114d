"""`jhub-af check-config`: which profiles each group's members see, and what is wrong.

:func:`check_catalogue` is pure (catalogue entries + known groups -> report);
:func:`check_config` applies it to a hub config, which the CLI reads with
:func:`load_hub_config` (or builds from the demo).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from traitlets.config import Config, PyFileConfigLoader

from jhub_af.accounting import BadRequest, memory_bytes

from .catalogue import parse_profile
from .kube import KubeProfiles
from .profile import CatalogueError, Profile


@dataclass
class Report:
    """What check-config found: the profiles each group sees, and the problems."""

    by_group: dict[str, list[str]] = field(default_factory=dict)
    everyone: list[str] = field(default_factory=list)
    admins_also: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def text(self, source: str) -> str:
        """The report as printed, ``source`` naming the config it is about."""
        lines = [f"Profiles in {source}, by the group a user is in:"]
        width = max((len(g) for g in self.by_group), default=0)
        for group, slugs in self.by_group.items():
            lines.append(f"  {group:<{width}}  {', '.join(slugs) or '(none)'}")
        lines.append(f"  users in none of these groups: {', '.join(self.everyone) or '(none)'}")
        if self.admins_also:
            lines.append(f"  hub admins also see: {', '.join(self.admins_also)}")
        if self.problems:
            lines.append("Problems:")
            lines += [f"  - {p}" for p in self.problems]
        else:
            lines.append("No problems found.")
        return "\n".join(lines)


def _memory_problems(p: Profile) -> list[str]:
    if not p.memory_guarantee:
        return []
    try:
        above = memory_bytes(p.memory_guarantee) > memory_bytes(p.memory)
    except BadRequest as e:
        return [f"profile {p.slug!r}: {e}"]
    if above:
        return [
            f"profile {p.slug!r}: memory_guarantee {p.memory_guarantee} is above memory {p.memory}"
        ]
    return []


def _resource_problems(p: Profile, gpu_types: dict) -> list[str]:
    problems = _memory_problems(p)
    if p.backend == "kubernetes" and p.gpu_type and p.gpu_type not in gpu_types:
        problems.append(
            f"profile {p.slug!r}: GPU type {p.gpu_type!r} has no entry in KubeProfiles.gpu_types "
            f"(known: {', '.join(gpu_types) or 'none'})"
        )
    if p.backend in ("slurm", "condor") and p.image:
        problems.append(f"profile {p.slug!r}: a {p.backend} profile runs no image; drop 'image'")
    return problems


def check_catalogue(entries, known_groups, gpu_types: dict | None = None) -> Report:
    """Report the profiles each known group sees, and every problem found.

    ``entries`` is ``ProfileSpawner.profiles`` (plain dicts), ``known_groups`` the
    facility's VO groups, ``gpu_types`` ``KubeProfiles.gpu_types`` (default: its
    default). Never raises for a bad catalogue: each fault becomes a problem.
    """
    gpu_types = KubeProfiles().gpu_types if gpu_types is None else gpu_types
    report = Report()
    profiles: list[Profile] = []
    if not isinstance(entries, list | tuple) or not entries:
        report.problems.append("ProfileSpawner.profiles is empty: nobody can start a server")
        entries = entries if isinstance(entries, list | tuple) else []
    for entry in entries:
        try:
            profiles.append(parse_profile(entry))
        except CatalogueError as e:
            report.problems.append(str(e))
    slugs = [p.slug for p in profiles]
    for slug in sorted({s for s in slugs if slugs.count(s) > 1}):
        report.problems.append(f"profile {slug!r} appears twice; slugs must be unique")
    known = sorted(set(known_groups))
    for group in known:
        report.by_group[group] = [p.slug for p in profiles if p.visible_to({group}, False)]
    report.everyone = [p.slug for p in profiles if p.visible_to(set(), False)]
    report.admins_also = [p.slug for p in profiles if p.admins_only]
    for p in profiles:
        unknown = [g for g in p.groups if g not in known]
        if unknown and not p.admins_only:
            report.problems.append(
                f"profile {p.slug!r}: unknown group(s) {', '.join(unknown)} "
                "(not a VO group of this facility; add it to ProfileSpawner.known_groups "
                "if it is one)"
            )
        if p.groups and not p.admins_only and not set(p.groups) & set(known):
            report.problems.append(f"profile {p.slug!r}: no group of this facility can see it")
        report.problems += _resource_problems(p, gpu_types)
    return report


def load_hub_config(path: str) -> Config:
    """The Config a ``jupyterhub_config.py`` at ``path`` builds (its code runs).

    Raises FileNotFoundError when ``path`` is not a file, and whatever the file
    raises. Called by `jhub-af check-config FILE`.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a file; give a jupyterhub_config.py")
    return PyFileConfigLoader(file.name, path=str(file.parent.resolve())).load_config()


def known_groups_of(c: Config, user_groups: Iterable[str] = ()) -> list[str]:
    """The VO groups a config names: ProfileSpawner.known_groups, the authenticator's
    allowed VOs, JupyterHub.load_groups, and ``user_groups`` (the groups of users the
    config signs in from a table, such as the demo's)."""
    groups = set(c.ProfileSpawner.get("known_groups", [])) | set(user_groups)
    for cls in ("DemoAuthenticator", "IAMAuthenticator"):
        groups |= set(c[cls].get("allowed_vos", []))
    groups |= set(c.JupyterHub.get("load_groups", {}))
    return sorted(groups)


def check_config(c: Config, source: str, user_groups: Iterable[str] = ()) -> tuple[int, str]:
    """(exit status, text) for `jhub-af check-config`: 1 when problems are found.

    ``c`` is the hub's Config, ``source`` names it in the text, ``user_groups`` adds
    known groups (:func:`known_groups_of`). Called by :mod:`jhub_af.cli`.
    """
    gpu_types = c.KubeProfiles.get("gpu_types", KubeProfiles().gpu_types)
    entries = c.ProfileSpawner.get("profiles", [])
    report = check_catalogue(entries, known_groups_of(c, user_groups), gpu_types)
    return (1 if report.problems else 0), report.text(source)
