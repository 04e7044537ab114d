"""jhub_af: a JupyterHub extension suite that turns a stock hub into a
particle-physics analysis facility (VO login, profiles, quotas and accounting,
Dask Gateway limits, SSH on demand, and a JupyterLab panel)."""

from ._version import __version__

__all__ = ["__version__"]
