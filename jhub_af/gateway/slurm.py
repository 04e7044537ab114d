"""Quota reservations for dask-gateway-server's jobqueue ``SlurmBackend``:
:class:`QuotaSlurmBackend`."""

from __future__ import annotations

from dask_gateway_server.backends.jobqueue.slurm import SlurmBackend
from traitlets import Unicode

from .db_base import QuotaBackendMixin


class QuotaSlurmBackend(QuotaBackendMixin, SlurmBackend):
    """dask-gateway-server's ``SlurmBackend`` with af-accounting reservations, the
    per-user cap on workers across clusters and housekeeping
    (:class:`~jhub_af.gateway.db_base.QuotaBackendMixin`).

    The scheduler and every worker are Slurm jobs of the user (``sbatch`` run through
    ``sudo -nHu USER dask-gateway-jobqueue-launcher``). What the gateway's host needs,
    as dask-gateway-server's own jobqueue backend does:

    - a unix account per hub user (``pwd.getpwnam``), and ``sudo`` that lets the gateway's
      user run the launcher as them without a password;
    - ``dask_gateway_jobqueue_launcher``, ``scheduler_cmd`` and ``worker_cmd`` in a
      Python environment every user can run (with ``dask-gateway`` installed: the
      scheduler loads ``dask_gateway.scheduler_preload``);
    - a staging directory (``SlurmClusterConfig.staging_directory``, by default under the
      user's home) that the compute nodes see: the cluster's TLS key and certificate go
      there, and the job logs.

    Named in the gateway's config as
    ``c.DaskGateway.backend_class = "jhub_af.gateway.slurm.QuotaSlurmBackend"``.
    """

    default_host = Unicode(
        "0.0.0.0",
        config=True,
        help="""
        The address the schedulers and workers bind on their node (``--host`` of the
        scheduler, the dashboards). Default ``0.0.0.0``: the gateway reaches the
        scheduler on its compute node. On a one-machine set-up (the tests) use
        ``127.0.0.1``.
        """,
    )
