"""The profile catalogue: what admins describe once, parsed and checked.

A catalogue is a list of plain dicts (YAML-friendly, so Helm values can carry it).
:func:`parse_catalogue` turns it into frozen :class:`.profile.Profile` objects or
raises :class:`.profile.CatalogueError` naming the profile and the field at fault.
:func:`parse_profile` reads one entry in seven named steps; the values' patterns and
checks are in :mod:`.field_checks`, the choices' step in :mod:`.choice_parsing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .choice_parsing import parse_choices
from .field_checks import (
    GROUP,
    MAX_GPUS,
    MAX_WALLTIME_HOURS,
    MEMORY,
    NAME,
    PATH,
    SLUG,
    TOKEN,
    checked_text,
    cores_and_memory,
    mapping_field,
    matching,
    profile_error,
    whole_number,
)
from .profile import CatalogueError, Profile

BACKENDS = ("local", "kubernetes", "slurm", "condor")
PROFILE_FIELDS = frozenset(
    [
        "slug",
        "display_name",
        "description",
        "backend",
        "image",
        "environment",
        "cvmfs",
        "resources",
        "accelerator",
        "kubernetes",
        "slurm",
        "choices",
        "groups",
        "admins_only",
        "start_note",
    ]
)


def _slug_and_backend(entry) -> tuple[str, str]:
    """Step 1: a mapping with a valid slug, known fields only and a known backend."""
    if not isinstance(entry, Mapping):
        raise CatalogueError(f"each profile must be a mapping, not {entry!r}")
    slug = entry.get("slug")
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise CatalogueError(
            f"profile slug {slug!r} is not allowed: use 1-40 lowercase letters, digits and '-'"
        )
    extra = sorted(set(entry) - PROFILE_FIELDS)
    if extra:
        raise profile_error(slug, f"unknown field(s) {', '.join(map(str, extra))}")
    backend = entry.get("backend", "local")
    if backend not in BACKENDS:
        raise profile_error(slug, f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    return slug, backend


def _parse_resources(entry: Mapping, slug: str) -> dict:
    """Step 2: cores, memory and their guarantees -> Profile fields."""
    resources = entry.get("resources", {})
    if not isinstance(resources, Mapping):
        raise profile_error(slug, "resources must be a mapping with cores and memory")
    cores, memory = cores_and_memory(resources, slug)
    guarantee = resources.get("cores_guarantee")
    if guarantee is not None and (
        isinstance(guarantee, bool)
        or not isinstance(guarantee, int | float)
        or not 0 < guarantee <= cores
    ):
        raise profile_error(
            slug, f"cores_guarantee must be a number above 0 and at most cores ({cores})"
        )
    memory_guarantee = resources.get("memory_guarantee", "")
    if memory_guarantee:
        matching(memory_guarantee, MEMORY, slug, "memory_guarantee", "4G")
    return {
        "cores": cores,
        "memory": memory,
        "cores_guarantee": guarantee,
        "memory_guarantee": memory_guarantee,
    }


def _parse_accelerator(entry: Mapping, slug: str) -> dict:
    """Step 3: the GPU type and count ("none" or absent: no GPU)."""
    accelerator = mapping_field(
        entry, "accelerator", slug, "accelerator must be a mapping with type and count"
    )
    gpu_type = accelerator.get("type", "none")
    gpu_type = "" if gpu_type in ("none", "", None) else gpu_type
    gpu_count = 0
    if gpu_type:
        matching(gpu_type, NAME, slug, "accelerator type", "t4")
        gpu_count = whole_number(
            accelerator.get("count", 1), slug, "accelerator count", 1, MAX_GPUS
        )
    return {"gpu_type": gpu_type, "gpu_count": gpu_count}


def _parse_software(entry: Mapping, slug: str, backend: str) -> dict:
    """Step 4: the image (which a kubernetes profile needs), environment and CVMFS."""
    image = entry.get("image", "")
    if image:
        matching(image, TOKEN, slug, "image", "ghcr.io/org/image:2026.1")
    if backend == "kubernetes" and not image:
        raise profile_error(slug, "a kubernetes profile needs an image")
    environment = entry.get("environment", "")
    if environment:
        matching(environment, PATH, slug, "environment", "/cvmfs/sft.cern.ch/lcg/views/LCG_107")
    cvmfs = entry.get("cvmfs", [])
    if not isinstance(cvmfs, list | tuple):
        raise profile_error(slug, "cvmfs must be a list of repositories")
    cvmfs = tuple(matching(r, NAME, slug, "CVMFS repository", "atlas.cern.ch") for r in cvmfs)
    return {"image": image, "environment": environment, "cvmfs": cvmfs}


def _parse_backend_fields(entry: Mapping, slug: str) -> dict:
    """Step 5: the ``kubernetes`` and ``slurm`` sections."""
    kube = entry.get("kubernetes") or {}
    slurm = entry.get("slurm") or {}
    if not isinstance(kube, Mapping) or not isinstance(slurm, Mapping):
        raise profile_error(slug, "kubernetes and slurm must be mappings")
    extra = sorted(set(kube) - {"preemptible"}) + sorted(
        set(slurm) - {"partition", "account", "qos", "walltime_hours"}
    )
    if extra:
        raise profile_error(slug, f"unknown backend field(s) {', '.join(map(str, extra))}")
    preemptible = kube.get("preemptible", False)
    if not isinstance(preemptible, bool):
        raise profile_error(slug, "kubernetes.preemptible must be true or false")
    fields = {"preemptible": preemptible}
    for key in ("partition", "account", "qos"):
        if slurm.get(key):
            fields[key] = matching(slurm[key], NAME, slug, f"slurm.{key}", "gpu")
    fields["walltime_hours"] = whole_number(
        slurm.get("walltime_hours", 0), slug, "slurm.walltime_hours", 0, MAX_WALLTIME_HOURS
    )
    return fields


def _parse_audience(entry: Mapping, slug: str) -> dict:
    """Step 7: who sees the profile (VO groups, or hub admins only)."""
    groups = entry.get("groups", [])
    if not isinstance(groups, list | tuple):
        raise profile_error(slug, "groups must be a list of VO groups such as /atlas/users")
    groups = tuple(matching(g, GROUP, slug, "group", "/atlas/users") for g in groups)
    admins_only = entry.get("admins_only", False)
    if not isinstance(admins_only, bool):
        raise profile_error(slug, "admins_only must be true or false")
    return {"groups": groups, "admins_only": admins_only}


def parse_profile(entry) -> Profile:
    """One catalogue entry (a plain dict) -> a checked :class:`Profile`.

    Raises :class:`CatalogueError` naming the profile and the field at fault (the
    first fault found, in the order of the steps below). Called by
    :func:`parse_catalogue` and by `jhub-af check-config`, which reports every
    profile's fault instead of stopping at the first.
    """
    slug, backend = _slug_and_backend(entry)
    resources = _parse_resources(entry, slug)
    accelerator = _parse_accelerator(entry, slug)
    software = _parse_software(entry, slug, backend)
    backend_fields = _parse_backend_fields(entry, slug)
    choices = parse_choices(entry, slug, backend, software["image"])
    audience = _parse_audience(entry, slug)
    return Profile(
        slug=slug,
        display_name=checked_text(entry, "display_name", slug, slug, limit=80),
        description=checked_text(entry, "description", slug),
        backend=backend,
        choices=choices,
        start_note=checked_text(entry, "start_note", slug, limit=300),
        **resources,
        **accelerator,
        **software,
        **backend_fields,
        **audience,
    )


def parse_catalogue(entries) -> tuple[Profile, ...]:
    """A whole catalogue (a list of plain dicts) -> its Profiles, in order.

    Raises :class:`CatalogueError` for the first fault, a slug seen twice included.
    Called by ProfileSpawner when ``profiles`` is set, and by the tests.
    """
    if not isinstance(entries, list | tuple):
        raise CatalogueError("the catalogue must be a list of profiles")
    profiles = tuple(parse_profile(e) for e in entries)
    seen: set[str] = set()
    for p in profiles:
        if p.slug in seen:
            raise CatalogueError(f"profile {p.slug!r} appears twice; slugs must be unique")
        seen.add(p.slug)
    return profiles


def visible_profiles(
    profiles: Iterable[Profile], groups: Iterable[str], admin: bool
) -> list[Profile]:
    """The profiles a user in ``groups`` (hub admin or not) may see, in catalogue order.

    Called by ProfileSpawner for the form and at every start."""
    groups = set(groups)
    return [p for p in profiles if p.visible_to(groups, admin)]
