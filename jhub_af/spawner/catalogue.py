"""The profile catalogue: what admins describe once, parsed and checked.

A catalogue is a list of plain dicts (YAML-friendly, so Helm values can carry
it). :func:`parse_catalogue` turns it into frozen :class:`Profile` objects or
raises :class:`CatalogueError` naming the profile and the field at fault.
Every string that can reach a backend (an image, a partition, a Slurm account)
is checked here against a strict pattern, so no shell metacharacter or newline
can come from the catalogue either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

BACKENDS = ("local", "kubernetes", "slurm", "condor")
CHOICE_NAMES = ("image_tag", "size", "partition", "walltime")

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
# images, tags, partitions, accounts, QOS, GPU types, CVMFS repositories, paths:
# letters, digits and . _ - / : @ only (never a space, quote, ; $ ` | & < > or newline)
TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PATH = re.compile(r"^/[A-Za-z0-9._/+-]{0,254}$")
MEMORY = re.compile(r"^[1-9][0-9]{0,5}[KMGT]$")
GROUP = re.compile(r"^/[A-Za-z0-9._/-]{1,200}$")
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
MAX_CORES = 512
MAX_GPUS = 16
MAX_WALLTIME_HOURS = 24 * 14


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
    """One checked profile of the catalogue (made by :func:`parse_profile`)."""

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


def _profile_error(slug: str, message: str) -> CatalogueError:
    """The error for a fault in profile ``slug``; the message names the field."""
    return CatalogueError(f"profile {slug!r}: {message}")


def _text(entry: Mapping, key: str, slug: str, default: str = "", limit: int = 2000) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str):
        raise _profile_error(slug, f"{key} must be text")
    if len(value) > limit:
        raise _profile_error(slug, f"{key} is longer than {limit} characters")
    return value


def _matching(value, pattern: re.Pattern, slug: str, what: str, example: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise _profile_error(
            slug, f"{what} {value!r} is not allowed (expected something like {example!r})"
        )
    return value


def _whole(value, slug: str, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _profile_error(
            slug, f"{what} must be a whole number from {low} to {high}, not {value!r}"
        )
    return value


def _mapping(entry: Mapping, key: str, slug: str, message: str) -> Mapping:
    """``entry[key]`` (missing or empty: ``{}``), which must be a mapping."""
    value = entry.get(key) or {}
    if not isinstance(value, Mapping):
        raise _profile_error(slug, message)
    return value


def _resources(entry: Mapping, slug: str) -> tuple[int, str]:
    cores = _whole(entry.get("cores", 1), slug, "cores", 1, MAX_CORES)
    memory = _matching(entry.get("memory", "2G"), MEMORY, slug, "memory", "8G")
    return cores, memory


def _parse_sizes(options, slug: str) -> tuple[Size, ...]:
    if not isinstance(options, Mapping) or not options:
        raise _profile_error(slug, "choices.size.options must map size names to {cores, memory}")
    sizes = []
    for name, spec in options.items():
        _matching(name, NAME, slug, "size name", "large")
        if not isinstance(spec, Mapping):
            raise _profile_error(slug, f"size {name!r} must be a mapping with cores and memory")
        cores, memory = _resources(spec, slug)
        display = _text(spec, "display_name", slug, name, limit=80)
        sizes.append(Size(name, display, cores, memory))
    return tuple(sizes)


def _parse_choice(name: str, spec, slug: str) -> Choice:
    if name not in CHOICE_NAMES:
        raise _profile_error(
            slug, f"unknown choice {name!r}; choices are {', '.join(CHOICE_NAMES)}"
        )
    if not isinstance(spec, Mapping):
        raise _profile_error(slug, f"choice {name!r} must be a mapping")
    display = _text(spec, "display_name", slug, name.replace("_", " ").capitalize(), limit=80)
    if name == "walltime":
        low = _whole(spec.get("min", 1), slug, "walltime min", 1, MAX_WALLTIME_HOURS)
        high = _whole(spec.get("max", low), slug, "walltime max", low, MAX_WALLTIME_HOURS)
        default = _whole(spec.get("default", low), slug, "walltime default", low, high)
        return Choice(name, display, default, minimum=low, maximum=high)
    if name == "size":
        sizes = _parse_sizes(spec.get("options"), slug)
        names = tuple(s.name for s in sizes)
        default = spec.get("default", names[0])
        if default not in names:
            raise _profile_error(slug, f"size default {default!r} is not one of {', '.join(names)}")
        return Choice(name, display, default, options=names, sizes=sizes)
    options = spec.get("options")
    if not isinstance(options, list | tuple) or not options:
        raise _profile_error(slug, f"choices.{name}.options must be a non-empty list")
    pattern = TOKEN if name == "image_tag" else NAME
    options = tuple(_matching(o, pattern, slug, f"{name} option", "2026.1") for o in options)
    default = spec.get("default", options[0])
    if default not in options:
        raise _profile_error(slug, f"{name} default {default!r} is not one of {', '.join(options)}")
    return Choice(name, display, default, options=options)


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
        raise _profile_error(slug, f"unknown field(s) {', '.join(map(str, extra))}")
    backend = entry.get("backend", "local")
    if backend not in BACKENDS:
        raise _profile_error(slug, f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    return slug, backend


def _parse_resources(entry: Mapping, slug: str) -> dict:
    """Step 2: cores, memory and their guarantees -> Profile fields."""
    resources = entry.get("resources", {})
    if not isinstance(resources, Mapping):
        raise _profile_error(slug, "resources must be a mapping with cores and memory")
    cores, memory = _resources(resources, slug)
    guarantee = resources.get("cores_guarantee")
    if guarantee is not None and (
        isinstance(guarantee, bool)
        or not isinstance(guarantee, int | float)
        or not 0 < guarantee <= cores
    ):
        raise _profile_error(
            slug, f"cores_guarantee must be a number above 0 and at most cores ({cores})"
        )
    memory_guarantee = resources.get("memory_guarantee", "")
    if memory_guarantee:
        _matching(memory_guarantee, MEMORY, slug, "memory_guarantee", "4G")
    return {
        "cores": cores,
        "memory": memory,
        "cores_guarantee": guarantee,
        "memory_guarantee": memory_guarantee,
    }


def _parse_accelerator(entry: Mapping, slug: str) -> dict:
    """Step 3: the GPU type and count ("none" or absent: no GPU)."""
    accelerator = _mapping(
        entry, "accelerator", slug, "accelerator must be a mapping with type and count"
    )
    gpu_type = accelerator.get("type", "none")
    gpu_type = "" if gpu_type in ("none", "", None) else gpu_type
    gpu_count = 0
    if gpu_type:
        _matching(gpu_type, NAME, slug, "accelerator type", "t4")
        gpu_count = _whole(accelerator.get("count", 1), slug, "accelerator count", 1, MAX_GPUS)
    return {"gpu_type": gpu_type, "gpu_count": gpu_count}


def _parse_software(entry: Mapping, slug: str, backend: str) -> dict:
    """Step 4: the image (which a kubernetes profile needs), environment and CVMFS."""
    image = entry.get("image", "")
    if image:
        _matching(image, TOKEN, slug, "image", "ghcr.io/org/image:2026.1")
    if backend == "kubernetes" and not image:
        raise _profile_error(slug, "a kubernetes profile needs an image")
    environment = entry.get("environment", "")
    if environment:
        _matching(environment, PATH, slug, "environment", "/cvmfs/sft.cern.ch/lcg/views/LCG_107")
    cvmfs = entry.get("cvmfs", [])
    if not isinstance(cvmfs, list | tuple):
        raise _profile_error(slug, "cvmfs must be a list of repositories")
    cvmfs = tuple(_matching(r, NAME, slug, "CVMFS repository", "atlas.cern.ch") for r in cvmfs)
    return {"image": image, "environment": environment, "cvmfs": cvmfs}


def _parse_backend_fields(entry: Mapping, slug: str) -> dict:
    """Step 5: the ``kubernetes`` and ``slurm`` sections."""
    kube = entry.get("kubernetes") or {}
    slurm = entry.get("slurm") or {}
    if not isinstance(kube, Mapping) or not isinstance(slurm, Mapping):
        raise _profile_error(slug, "kubernetes and slurm must be mappings")
    extra = sorted(set(kube) - {"preemptible"}) + sorted(
        set(slurm) - {"partition", "account", "qos", "walltime_hours"}
    )
    if extra:
        raise _profile_error(slug, f"unknown backend field(s) {', '.join(map(str, extra))}")
    preemptible = kube.get("preemptible", False)
    if not isinstance(preemptible, bool):
        raise _profile_error(slug, "kubernetes.preemptible must be true or false")
    fields = {"preemptible": preemptible}
    for key in ("partition", "account", "qos"):
        if slurm.get(key):
            fields[key] = _matching(slurm[key], NAME, slug, f"slurm.{key}", "gpu")
    fields["walltime_hours"] = _whole(
        slurm.get("walltime_hours", 0), slug, "slurm.walltime_hours", 0, 336
    )
    return fields


def _parse_choices(entry: Mapping, slug: str, backend: str, image: str) -> dict[str, Choice]:
    """Step 6: the choices a user may make, each fitting the profile's backend and image."""
    choices = _mapping(
        entry, "choices", slug, "choices must be a mapping from choice name to its options"
    )
    parsed = {name: _parse_choice(name, spec, slug) for name, spec in choices.items()}
    if "image_tag" in parsed and not image:
        raise _profile_error(slug, "an image_tag choice needs an image")
    if backend not in ("slurm", "condor"):
        for name in ("partition", "walltime"):
            if name in parsed:
                raise _profile_error(slug, f"the {name} choice is for slurm profiles only")
    return parsed


def _parse_audience(entry: Mapping, slug: str) -> dict:
    """Step 7: who sees the profile (VO groups, or hub admins only)."""
    groups = entry.get("groups", [])
    if not isinstance(groups, list | tuple):
        raise _profile_error(slug, "groups must be a list of VO groups such as /atlas/users")
    groups = tuple(_matching(g, GROUP, slug, "group", "/atlas/users") for g in groups)
    admins_only = entry.get("admins_only", False)
    if not isinstance(admins_only, bool):
        raise _profile_error(slug, "admins_only must be true or false")
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
    choices = _parse_choices(entry, slug, backend, software["image"])
    audience = _parse_audience(entry, slug)
    return Profile(
        slug=slug,
        display_name=_text(entry, "display_name", slug, slug, limit=80),
        description=_text(entry, "description", slug),
        backend=backend,
        choices=choices,
        start_note=_text(entry, "start_note", slug, limit=300),
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
