"""The whole facility on one machine: what `jhub-af demo` runs.

``configure(c, settings)`` applies every demo part to a JupyterHub config;
each component that joins the demo adds one part in :mod:`.parts`.
"""

from .authenticator import DEMO_USERS, DemoAuthenticator
from .launcher import DemoError, run_demo
from .parts import DEMO_PARTS, configure
from .settings import DemoSettings

__all__ = [
    "DEMO_PARTS",
    "DEMO_USERS",
    "DemoAuthenticator",
    "DemoError",
    "DemoSettings",
    "configure",
    "run_demo",
]
