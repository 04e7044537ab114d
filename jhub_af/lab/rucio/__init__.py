"""The Data tab of the JupyterLab panel: browse Rucio, open and download files, request replicas.

Public face:

- :class:`RucioPanel`: the configuration (``c.RucioPanel.instances``, downloads' root, paging);
- :func:`rucio_handlers`: the routes under ``{base_url}jhub-af/rucio/`` that
  ``jhub_af.lab`` registers in the user's server;
- :class:`RucioClient`: the small async REST client (paged listings, replicas of one
  page), raising the panel's :class:`jhub_af.lab.api.PanelError`;
- the pure helpers the handlers use: :func:`parse_instance`, :func:`confine_target`,
  :func:`uproot_snippet`.
"""

from .client import RucioClient, take_page
from .config import ConfigError, InstanceConfig, RucioPanel, parse_instance
from .handlers import rucio_handlers
from .paths import TargetRefused, confine_target, file_basename
from .snippet import preferred_pfn, uproot_snippet

__all__ = [
    "ConfigError",
    "InstanceConfig",
    "RucioClient",
    "RucioPanel",
    "TargetRefused",
    "confine_target",
    "file_basename",
    "parse_instance",
    "preferred_pfn",
    "rucio_handlers",
    "take_page",
    "uproot_snippet",
]
