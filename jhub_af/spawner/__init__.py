"""Profiles: the catalogue, ProfileSpawner, and one module per backend.

Data path: form or REST ``user_options`` -> :func:`options.select` (validated
against the catalogue filtered by the user's groups, at every start) ->
:class:`ProfileSpawner` builds the backend spawner from config plus the pure
settings of :mod:`.local`, :mod:`.kube`, :mod:`.slurm` or :mod:`.condor`.
"""

from .catalogue import CatalogueError, Profile, parse_catalogue, visible_profiles
from .examples import DEMO_PROFILES
from .options import ProfileRefused, Selection, select
from .spawner import ProfileSpawner

__all__ = [
    "DEMO_PROFILES",
    "CatalogueError",
    "Profile",
    "ProfileRefused",
    "ProfileSpawner",
    "Selection",
    "parse_catalogue",
    "select",
    "visible_profiles",
]
