"""The choices a profile offers its users (``choices`` in a catalogue entry): an image
tag, a size, a partition, a walltime. Step 6 of :func:`.catalogue.parse_profile`."""

from __future__ import annotations

from collections.abc import Mapping

from .field_checks import (
    MAX_WALLTIME_HOURS,
    NAME,
    TOKEN,
    checked_text,
    cores_and_memory,
    mapping_field,
    matching,
    profile_error,
    whole_number,
)
from .profile import Choice, Size

CHOICE_NAMES = ("image_tag", "size", "partition", "walltime")


def _parse_sizes(options, slug: str) -> tuple[Size, ...]:
    """A size choice's ``options`` (size name -> {cores, memory, display_name}) -> Sizes."""
    if not isinstance(options, Mapping) or not options:
        raise profile_error(slug, "choices.size.options must map size names to {cores, memory}")
    sizes = []
    for name, spec in options.items():
        matching(name, NAME, slug, "size name", "large")
        if not isinstance(spec, Mapping):
            raise profile_error(slug, f"size {name!r} must be a mapping with cores and memory")
        cores, memory = cores_and_memory(spec, slug)
        display = checked_text(spec, "display_name", slug, name, limit=80)
        sizes.append(Size(name, display, cores, memory))
    return tuple(sizes)


def _parse_choice(name: str, spec, slug: str) -> Choice:
    """One entry of ``choices`` -> a :class:`Choice`: walltime is a range of hours, size
    a set of named sizes, image_tag and partition a list of options."""
    if name not in CHOICE_NAMES:
        raise profile_error(slug, f"unknown choice {name!r}; choices are {', '.join(CHOICE_NAMES)}")
    if not isinstance(spec, Mapping):
        raise profile_error(slug, f"choice {name!r} must be a mapping")
    display = checked_text(
        spec, "display_name", slug, name.replace("_", " ").capitalize(), limit=80
    )
    if name == "walltime":
        low = whole_number(spec.get("min", 1), slug, "walltime min", 1, MAX_WALLTIME_HOURS)
        high = whole_number(spec.get("max", low), slug, "walltime max", low, MAX_WALLTIME_HOURS)
        default = whole_number(spec.get("default", low), slug, "walltime default", low, high)
        return Choice(name, display, default, minimum=low, maximum=high)
    if name == "size":
        sizes = _parse_sizes(spec.get("options"), slug)
        names = tuple(s.name for s in sizes)
        default = spec.get("default", names[0])
        if default not in names:
            raise profile_error(slug, f"size default {default!r} is not one of {', '.join(names)}")
        return Choice(name, display, default, options=names, sizes=sizes)
    options = spec.get("options")
    if not isinstance(options, list | tuple) or not options:
        raise profile_error(slug, f"choices.{name}.options must be a non-empty list")
    pattern = TOKEN if name == "image_tag" else NAME
    options = tuple(matching(o, pattern, slug, f"{name} option", "2026.1") for o in options)
    default = spec.get("default", options[0])
    if default not in options:
        raise profile_error(slug, f"{name} default {default!r} is not one of {', '.join(options)}")
    return Choice(name, display, default, options=options)


def parse_choices(entry: Mapping, slug: str, backend: str, image: str) -> dict[str, Choice]:
    """Step 6 of :func:`.catalogue.parse_profile`: the choices a user may make (choice
    name -> :class:`Choice`), each fitting the profile's ``backend`` and ``image``.
    Raises :class:`.profile.CatalogueError` naming the choice at fault."""
    choices = mapping_field(
        entry, "choices", slug, "choices must be a mapping from choice name to its options"
    )
    parsed = {name: _parse_choice(name, spec, slug) for name, spec in choices.items()}
    if "image_tag" in parsed and not image:
        raise profile_error(slug, "an image_tag choice needs an image")
    if backend not in ("slurm", "condor"):
        for name in ("partition", "walltime"):
            if name in parsed:
                raise profile_error(slug, f"the {name} choice is for slurm profiles only")
    return parsed
