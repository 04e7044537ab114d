"""The whole facility on one machine: what `jhub-af demo` runs.

- :func:`configure` applies every part of :mod:`.parts` to a JupyterHub config;
  :func:`run_demo` (:mod:`.launcher`) writes that config and runs the hub.
- :class:`DemoAuthenticator` and :data:`DEMO_USERS`: the demo login.
- The demo's data, also the docs' examples: :data:`DEMO_PROFILES` (and
  :data:`SLURM_EXAMPLE`, which the demo does not offer), :data:`DEMO_POLICY`
  (af-accounting), :data:`DEMO_GATEWAY_OPTIONS` (the Dask Gateway).
"""

from .authenticator import DEMO_USERS, DemoAuthenticator, demo_user_groups
from .cluster_options import DEMO_GATEWAY_OPTIONS
from .launcher import DemoError, run_demo
from .parts import DEMO_PARTS, configure
from .policy import DEMO_POLICY
from .profiles import DEMO_PROFILES, NO_CLUSTER, SLURM_EXAMPLE
from .settings import DemoSettings

__all__ = [
    "DEMO_GATEWAY_OPTIONS",
    "DEMO_PARTS",
    "DEMO_POLICY",
    "DEMO_PROFILES",
    "DEMO_USERS",
    "NO_CLUSTER",
    "SLURM_EXAMPLE",
    "DemoAuthenticator",
    "DemoError",
    "DemoSettings",
    "configure",
    "demo_user_groups",
    "run_demo",
]
