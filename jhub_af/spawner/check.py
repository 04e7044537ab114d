"""`jhub-af check-config`: which profiles each group's members see, and what is wrong.

:func:`check_catalogue` is pure (catalogue entries + known groups -> report);
:func:`load_hub_config` reads a ``jupyterhub_config.py`` (or builds the demo's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from traitlets.config import Config, PyFileConfigLoader

from .catalogue import CatalogueError, Profile, parse_profile
from .kube import KubeProfiles

BYTES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _bytes(spec: str) -> int:
    return int(spec[:-1]) * BYTES[spec[-1]]


@dataclass
class Report:
    by_group: dict[str, list[str]] = field(default_factory=dict)
    everyone: list[str] = field(default_factory=list)
    admins_also: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def text(self, source: str) -> str:
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


def _resource_problems(p: Profile, gpu_types: dict) -> list[str]:
    problems = []
    if p.memory_guarantee and _bytes(p.memory_guarantee) > _bytes(p.memory):
        problems.append(
            f"profile {p.slug!r}: memory_guarantee {p.memory_guarantee} is above memory {p.memory}"
        )
    if p.backend == "kubernetes" and p.gpu_type and p.gpu_type not in gpu_types:
        problems.append(
            f"profile {p.slug!r}: GPU type {p.gpu_type!r} has no entry in KubeProfiles.gpu_types "
            f"(known: {', '.join(gpu_types) or 'none'})"
        )
    if p.backend in ("slurm", "condor") and p.image:
        problems.append(f"profile {p.slug!r}: a {p.backend} profile runs no image; drop 'image'")
    return problems


def check_catalogue(entries, known_groups, gpu_types: dict | None = None) -> Report:
    """Report the profiles each known group sees, and every problem found."""
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


def demo_config() -> Config:
    """The demo facility's configuration, built in memory as `jhub-af demo` writes it."""
    from jhub_af.demo import DemoSettings, configure

    c = Config()
    settings = DemoSettings(
        ip="127.0.0.1", port=8000, data_dir=".jhub-af-demo", hub_port=8081, proxy_api_port=8001
    )
    configure(c, settings)
    return c


def load_hub_config(path: str | None) -> Config:
    if path is None:
        return demo_config()
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a file; give a jupyterhub_config.py")
    return PyFileConfigLoader(file.name, path=str(file.parent.resolve())).load_config()


def known_groups_of(c: Config) -> list[str]:
    """The VO groups a config names: ProfileSpawner.known_groups, the authenticator's
    allowed VOs (and the demo's users), and JupyterHub.load_groups."""
    groups = set(c.ProfileSpawner.get("known_groups", []))
    for cls in ("DemoAuthenticator", "IAMAuthenticator"):
        groups |= set(c[cls].get("allowed_vos", []))
    authenticator = c.JupyterHub.get("authenticator_class")
    name = getattr(authenticator, "__name__", authenticator)
    if name in ("DemoAuthenticator", "af-demo"):
        from jhub_af.demo import DEMO_USERS

        users = c.DemoAuthenticator.get("demo_users", DEMO_USERS)
        for entry in users.values():
            groups |= set(entry.get("groups", []))
    groups |= set(c.JupyterHub.get("load_groups", {}))
    return sorted(groups)


def check_config(path: str | None) -> tuple[int, str]:
    """(exit status, text) for `jhub-af check-config [FILE]`: 1 when problems are found."""
    c = load_hub_config(path)
    source = path or "the demo's configuration"
    gpu_types = c.KubeProfiles.get("gpu_types", KubeProfiles().gpu_types)
    report = check_catalogue(c.ProfileSpawner.get("profiles", []), known_groups_of(c), gpu_types)
    return (1 if report.problems else 0), report.text(source)
