"""The spawn form: Bootstrap 5 cards (the hub's own pages are Bootstrap 5), autoescaped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from .profile import Profile

WHERE = {
    "local": "on the hub's machine",
    "kubernetes": "in the Kubernetes cluster",
    "slurm": "as a job on the HPC cluster (Slurm)",
    "condor": "as a job on the HTCondor pool",
}

_env = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


@dataclass
class Card:
    """What the form's template shows for one profile: where it runs, whether it can
    start here, and the user's last choices in it."""

    profile: Profile
    where: str
    unavailable: str = ""
    current: Mapping = field(default_factory=dict)


def render_form(
    profiles: list[Profile],
    last_options: Mapping | None,
    unavailable: Mapping[str, str],
) -> str:
    """The form for the ``profiles`` a user may use; their last choice preselected.

    A last choice that is no longer offered (removed by an admin, or the user
    lost the group) falls back to the first profile, with a notice saying so.
    ``unavailable`` maps a backend to why it cannot start here. Returns HTML, every
    catalogue value escaped. Called by ProfileSpawner's ``options_form``.
    """
    last = dict(last_options or {})
    last_slug = last.get("profile")
    slugs = [p.slug for p in profiles]
    notice = ""
    selected = slugs[0] if slugs else ""
    if isinstance(last_slug, str) and last_slug in slugs:
        selected = last_slug
    elif last_slug:
        notice = (
            "The profile you used last time is no longer offered to you; "
            "pick one of the profiles below."
        )
    cards = [
        Card(
            profile=p,
            where=WHERE[p.backend],
            unavailable=unavailable.get(p.backend, ""),
            current={k: v for k, v in last.items() if k != "profile"} if p.slug == selected else {},
        )
        for p in profiles
    ]
    return _env.get_template("form.html").render(cards=cards, selected=selected, notice=notice)
