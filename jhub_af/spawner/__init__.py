"""Profiles: the catalogue, ProfileSpawner, and one module per backend.

Data path: form or REST ``user_options`` -> :func:`options.select` (validated
against the catalogue filtered by the user's groups, at every start) ->
:class:`ProfileSpawner` builds the backend spawner from config plus the pure
settings of :mod:`.local`, :mod:`.kube` or :mod:`.batch_settings` (slurm, condor).
A hub with batch profiles calls :func:`install_job_callback` in its config;
:func:`check_config` is `jhub-af check-config`.
"""

from .callback import install_job_callback
from .catalogue import parse_catalogue, visible_profiles
from .check import check_config, load_hub_config
from .options import ProfileRefused, Selection, select
from .profile import CatalogueError, Profile
from .spawner import ProfileSpawner

__all__ = [
    "CatalogueError",
    "Profile",
    "ProfileRefused",
    "ProfileSpawner",
    "Selection",
    "check_config",
    "install_job_callback",
    "load_hub_config",
    "parse_catalogue",
    "select",
    "visible_profiles",
]
