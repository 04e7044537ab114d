"""The demo's profile catalogue, and the slurm profile the admin docs show.

``DEMO_PROFILES`` is what `jhub-af demo` offers: two local profiles, and the
kubernetes CVMFS and GPU profiles a real facility would have, shown to admins
only because the demo has no cluster (choosing one says ``NO_CLUSTER``).
``SLURM_EXAMPLE`` is docs/admin/profiles.md's HPC profile; the demo, which has
no Slurm, does not offer it (the tests parse and select it).
"""

RAPIDS = "nvcr.io/nvidia/rapidsai/notebooks"
ANALYSIS = "quay.io/jupyter/scipy-notebook"
NO_CLUSTER = (
    "This demo facility has no Kubernetes cluster attached; on a real facility this "
    "profile starts a pod as described."
)

DEMO_PROFILES = [
    {
        "slug": "default",
        "display_name": "Default",
        "description": "JupyterLab on the facility's own machine: for trying things out.",
        "backend": "local",
        "resources": {"cores": 1, "memory": "2G"},
        "start_note": "Starts in a few seconds.",
    },
    {
        "slug": "large",
        "display_name": "Large",
        "description": "More cores and memory, for ATLAS users.",
        "backend": "local",
        "resources": {"cores": 4, "memory": "8G"},
        "groups": ["/atlas/users"],
        "start_note": "Starts in a few seconds.",
    },
    {
        "slug": "cvmfs",
        "display_name": "CVMFS analysis image",
        "description": "A Python analysis image with the ATLAS and SFT CVMFS repositories.",
        "backend": "kubernetes",
        "image": f"{ANALYSIS}:2025-10-20",
        "cvmfs": ["atlas.cern.ch", "atlas-condb.cern.ch", "sft.cern.ch"],
        "resources": {"cores": 2, "memory": "8G", "cores_guarantee": 0.5},
        "choices": {
            "image_tag": {"options": ["2025-10-20", "2025-06-02"], "default": "2025-10-20"},
            "size": {
                "options": {
                    "medium": {"cores": 2, "memory": "8G"},
                    "large": {"cores": 8, "memory": "32G"},
                },
                "default": "medium",
            },
        },
        "admins_only": True,
        "start_note": "Starts in about a minute (longer when the image is new to the node).",
    },
    {
        "slug": "t4",
        "display_name": "RAPIDS on an NVIDIA T4",
        "description": "RAPIDS (cuDF, cuML) with one T4 GPU, on spot nodes.",
        "backend": "kubernetes",
        "image": f"{RAPIDS}:25.08-cuda12.9-py3.12",
        "cvmfs": ["sft.cern.ch"],
        "resources": {"cores": 4, "memory": "16G"},
        "accelerator": {"type": "t4", "count": 1},
        "kubernetes": {"preemptible": True},
        "admins_only": True,
        "start_note": "GPU nodes start in about 10 minutes.",
    },
    {
        "slug": "p100",
        "display_name": "RAPIDS on an NVIDIA P100",
        "description": "RAPIDS with one P100 GPU, for longer training runs.",
        "backend": "kubernetes",
        "image": f"{RAPIDS}:25.08-cuda12.9-py3.12",
        "resources": {"cores": 8, "memory": "32G"},
        "accelerator": {"type": "p100", "count": 1},
        "admins_only": True,
        "start_note": "GPU nodes start in about 10 minutes.",
    },
]

SLURM_EXAMPLE = {
    "slug": "hpc",
    "display_name": "HPC node (Slurm)",
    "description": "A notebook as a job on the HPC cluster's batch partition.",
    "backend": "slurm",
    "environment": "/cvmfs/sft.cern.ch/lcg/views/LCG_107/x86_64-el9-gcc13-opt",
    "resources": {"cores": 4, "memory": "16G"},
    "slurm": {"partition": "batch", "account": "atlas", "qos": "interactive", "walltime_hours": 4},
    "choices": {
        "partition": {"options": ["batch", "gpu"], "default": "batch"},
        "walltime": {"min": 1, "max": 12, "default": 4},
    },
    "groups": ["/atlas/users"],
    "start_note": (
        "Starts when the job leaves the queue: usually a minute, longer when the cluster is busy."
    ),
}
