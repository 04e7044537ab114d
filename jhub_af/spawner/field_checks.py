"""What a catalogue's values may be, and the checks that say so.

Every string that can reach a backend (an image, a partition, a Slurm account) is
checked against one of these strict patterns, so no shell metacharacter or newline
can come from the catalogue. Each check returns the value it checked or raises
:class:`.profile.CatalogueError` naming the profile (``slug``) and the field; used by
the parsing steps of :mod:`.catalogue` and :mod:`.choice_parsing`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .profile import CatalogueError

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
# images, tags, partitions, accounts, QOS, GPU types, CVMFS repositories, paths:
# letters, digits and . _ - / : @ only (never a space, quote, ; $ ` | & < > or newline)
TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PATH = re.compile(r"^/[A-Za-z0-9._/+-]{0,254}$")
MEMORY = re.compile(r"^[1-9][0-9]{0,5}[KMGT]$")
GROUP = re.compile(r"^/[A-Za-z0-9._/-]{1,200}$")
# the largest numbers a profile may ask for
MAX_CORES = 512
MAX_GPUS = 16
MAX_WALLTIME_HOURS = 24 * 14


def profile_error(slug: str, message: str) -> CatalogueError:
    """The error for a fault in profile ``slug``: "profile 'gpu': <message>", where the
    message names the field. Raised by every check and parsing step."""
    return CatalogueError(f"profile {slug!r}: {message}")


def checked_text(entry: Mapping, key: str, slug: str, default: str = "", limit: int = 2000) -> str:
    """``entry[key]`` (missing: ``default``), which must be text of at most ``limit``
    characters (display names, descriptions, start notes)."""
    value = entry.get(key, default)
    if not isinstance(value, str):
        raise profile_error(slug, f"{key} must be text")
    if len(value) > limit:
        raise profile_error(slug, f"{key} is longer than {limit} characters")
    return value


def matching(value, pattern: re.Pattern, slug: str, what: str, example: str) -> str:
    """``value``, which must be a string matching ``pattern``; the refusal calls it
    ``what`` and shows ``example`` as something that would do."""
    if not isinstance(value, str) or not pattern.match(value):
        raise profile_error(
            slug, f"{what} {value!r} is not allowed (expected something like {example!r})"
        )
    return value


def whole_number(value, slug: str, what: str, low: int, high: int) -> int:
    """``value``, which must be an int (not a bool) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise profile_error(
            slug, f"{what} must be a whole number from {low} to {high}, not {value!r}"
        )
    return value


def mapping_field(entry: Mapping, key: str, slug: str, message: str) -> Mapping:
    """``entry[key]`` (missing or empty: ``{}``), which must be a mapping."""
    value = entry.get(key) or {}
    if not isinstance(value, Mapping):
        raise profile_error(slug, message)
    return value


def cores_and_memory(entry: Mapping, slug: str) -> tuple[int, str]:
    """``entry``'s ``cores`` (default 1, at most :data:`MAX_CORES`) and ``memory``
    (default "2G"), as a profile's ``resources`` and each size of a size choice give them."""
    cores = whole_number(entry.get("cores", 1), slug, "cores", 1, MAX_CORES)
    memory = matching(entry.get("memory", "2G"), MEMORY, slug, "memory", "8G")
    return cores, memory
