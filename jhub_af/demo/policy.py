"""The demo facility's af-accounting policy (``jhub-af demo``), also the docs' example.

alice (/atlas/users) may run 1 server of up to 2 cores; bob (/cms/gpu) may run
1 server with a GPU; both have a monthly core-hour budget. Dask limits are set
for the Dask Gateway, which asks the same service.
"""

DEMO_POLICY = {
    "period": "month",
    "warn_at": 0.8,
    "defaults": {
        "servers": 1,
        "cores": 1,
        "memory": "4G",
        "gpus": {"*": 0},
        "dask_clusters": 2,
        "dask_workers": 4,
        "dask_cores": 8,
        "dask_memory": "16G",
        "core_hours": 100,
        "gpu_hours": 0,
    },
    "groups": {
        "/atlas/users": {"servers": 1, "cores": 2, "memory": "8G", "core_hours": 500},
        "/cms/gpu": {
            "servers": 1,
            "cores": 8,
            "memory": "32G",
            "gpus": {"t4": 1, "p100": 1},
            "core_hours": 300,
            "gpu_hours": 50,
        },
    },
    "users": {
        "admin": {
            "servers": 5,
            "cores": 64,
            "memory": "256G",
            "gpus": {"*": 4},
            "core_hours": "unlimited",
            "gpu_hours": "unlimited",
        }
    },
}
