"""user_options -> a validated :class:`Selection`, or a refusal that says what is allowed.

``user_options`` come from the spawn form or straight from the REST API and are
never trusted: every key must be one the chosen profile defines, every value
must be one the catalogue allows, and the profile must be one the user's groups
may use *now*. A backend only ever sees a :class:`Selection`, built from the
catalogue's own values (never the strings the user sent).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from jhub_af.hub import BadSpawnBody, unwrap_spawn_body

from .field_checks import SLUG
from .profile import Profile

MAX_OPTIONS = 16
OPTION_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


class ProfileRefused(ValueError):
    """A start refused because of the options; the message is for the physicist."""


@dataclass(frozen=True)
class Selection:
    """A profile and the user's validated choices, resolved to concrete values."""

    profile: Profile
    choices: Mapping[str, str | int]
    image: str
    cores: int
    memory: str
    partition: str
    walltime_hours: int

    @property
    def backend(self) -> str:
        """The profile's backend: local, kubernetes, slurm or condor."""
        return self.profile.backend

    def user_options(self) -> dict:
        """The validated options in the user_options shape (what is remembered)."""
        return {"profile": self.profile.slug, **self.choices}


def _shown(key) -> str:
    """An option name as a refusal may show it: plain names only, never the user's HTML."""
    key = str(key)
    return f"'{key}'" if OPTION_NAME.match(key) else "(an option with an unusual name)"


def _names(profiles: Iterable[Profile]) -> str:
    names = [p.slug for p in profiles]
    return ", ".join(names) if names else "none (ask your VO admin for access)"


def _with_tag(image: str, tag: str) -> str:
    """Replace the tag of ``repo/name:tag`` (a registry port is not a tag)."""
    repo, sep, old = image.rpartition(":")
    if sep and "/" not in old:
        image = repo
    return f"{image}:{tag}"


def _choice_value(profile: Profile, name: str, value) -> str | int:
    choice = profile.choices[name]
    if choice.is_range:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProfileRefused(
                f"Option '{name}' of profile '{profile.slug}' must be a whole number of hours "
                f"from {choice.minimum} to {choice.maximum}."
            )
        if not choice.minimum <= value <= choice.maximum:
            raise ProfileRefused(
                f"Option '{name}' of profile '{profile.slug}' must be from {choice.minimum} "
                f"to {choice.maximum} hours."
            )
        return value
    if not isinstance(value, str) or value not in choice.options:
        raise ProfileRefused(
            f"Option '{name}' of profile '{profile.slug}' must be one of: "
            f"{', '.join(choice.options)}."
        )
    # the catalogue's own string, not the user's object
    return choice.options[choice.options.index(value)]


def default_profile(profiles: list[Profile]) -> Profile | None:
    """The profile a start without ``profile`` gets: the first the user may use."""
    return profiles[0] if profiles else None


def select(
    options,
    catalogue: Iterable[Profile],
    groups: Iterable[str],
    admin: bool,
) -> Selection:
    """The Selection that ``options`` (user_options, or a JupyterHub 6 spawn body)
    asks for, checked for a user in ``groups`` (hub admin or not) against the catalogue.

    Raises :class:`ProfileRefused` whose sentence the user sees (what was wrong,
    and the profiles they may use). Called by ProfileSpawner at every start.
    """
    try:
        options = unwrap_spawn_body(options)
    except BadSpawnBody as e:
        raise ProfileRefused(str(e)) from None
    catalogue = list(catalogue)
    allowed = [p for p in catalogue if p.visible_to(set(groups), admin)]
    if len(options) > MAX_OPTIONS:
        raise ProfileRefused(f"Too many server options; a profile has at most {MAX_OPTIONS}.")
    profile = _chosen_profile(options.get("profile"), catalogue, allowed)
    unknown = sorted(_shown(k) for k in options if k != "profile" and k not in profile.choices)
    if unknown:
        known = ", ".join(["profile", *profile.choices])
        raise ProfileRefused(
            f"Unknown option(s) {', '.join(unknown)} for profile "
            f"'{profile.slug}'; the options it takes are: {known}."
        )
    return _resolved(profile, options)


def _chosen_profile(slug, catalogue: list[Profile], allowed: list[Profile]) -> Profile:
    """The profile ``slug`` names (None: the default), if the user may use it."""
    if slug is None:
        profile = default_profile(allowed)
        if profile is None:
            raise ProfileRefused(
                "No profile is open to your groups, so no server can start. "
                "Ask your VO admin which group gives access to this facility's profiles."
            )
        return profile
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise ProfileRefused(
            "The option 'profile' must be the short name of a profile. "
            f"Profiles you can use: {_names(allowed)}."
        )
    profile = next((p for p in catalogue if p.slug == slug), None)
    if profile is None:
        raise ProfileRefused(
            f"There is no profile '{slug}' (your admins may have removed it). "
            f"Profiles you can use: {_names(allowed)}."
        )
    if profile not in allowed:
        raise ProfileRefused(
            f"The profile '{slug}' is for {profile.who_may_use()}; ask your VO admin. "
            f"Profiles you can use: {_names(allowed)}."
        )
    return profile


def _resolved(profile: Profile, options: Mapping) -> Selection:
    """The profile with each choice checked (or its default) and applied."""
    choices = {
        name: _choice_value(profile, name, options.get(name, choice.default))
        for name, choice in profile.choices.items()
    }
    cores, memory = profile.cores, profile.memory
    if "size" in choices:
        size = profile.choices["size"].size(choices["size"])
        cores, memory = size.cores, size.memory
    image = profile.image
    if "image_tag" in choices:
        image = _with_tag(image, choices["image_tag"])
    return Selection(
        profile=profile,
        choices=choices,
        image=image,
        cores=cores,
        memory=memory,
        partition=choices.get("partition", profile.partition),
        walltime_hours=choices.get("walltime", profile.walltime_hours),
    )


def options_from_form(formdata: Mapping[str, list[str]]) -> dict:
    """The spawn form's fields -> user_options (only the chosen profile's choices).

    Each choice field is named ``<slug>--<choice>``; numbers arrive as text. Never
    raises: :func:`select` checks the result. ProfileSpawner's ``options_from_form``.
    """
    slug = (formdata.get("profile") or [""])[0]
    options: dict = {"profile": slug} if slug else {}
    prefix = f"{slug}--"
    for key, values in formdata.items():
        if slug and key.startswith(prefix) and values:
            name, value = key[len(prefix) :], values[0]
            number = name == "walltime" and value.isascii() and value.isdigit()
            options[name] = int(value) if number else value
    return options
