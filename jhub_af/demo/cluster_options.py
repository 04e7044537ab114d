"""The demo facility's cluster options (``jhub-af demo``), also the docs' example.

Everyone may ask for workers of 1 core and up to 2 GiB; /atlas/users up to 2 cores
and 4 GiB, and the ATLAS environment. Idle clusters stop after 30 minutes (an hour
for /atlas/users). The worker limits themselves are af-accounting's (DEMO_POLICY:
4 Dask workers at a time across all of a user's clusters).
"""

DEMO_GATEWAY_OPTIONS = {
    "default": {"worker_cores": 1, "worker_memory": 2, "idle_timeout": 1800},
    "groups": {
        "/atlas/users": {
            "worker_cores": 2,
            "worker_memory": 4,
            "idle_timeout": 3600,
            "environments": {"atlas": {"AF_ENVIRONMENT": "atlas"}},
        },
    },
}
