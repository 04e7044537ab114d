"""Guards for batchspawner's known faults, shared by the slurm and condor backends.

- only ``req_*`` values (all built from the catalogue) reach the job script:
  ``user_options`` are never merged in, and every value is re-checked for shell
  metacharacters and newlines just before it is used;
- a failed status query (a timeout, an ssh hiccup to the login node) does not
  mark a live server dead: only the batch system saying the job is gone does, or
  ``query_failure_limit`` failures in a row (batchspawner issue 315);
- the job's call-back may set only the port (see :mod:`.callback`): no job is
  submitted on a hub whose config did not install that handler.
"""

from __future__ import annotations

import re

from batchspawner import JobStatus
from batchspawner.batchspawner import format_template
from traitlets import Integer, Unicode
from traitlets.config import LoggingConfigurable

from .callback import NOT_INSTALLED, job_callback_installed

# what a req_* value that reaches a job script or a command line may contain
SAFE_VALUE = re.compile(r"^[A-Za-z0-9:._,=/-]*$")
SAFE_USERNAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# values from the admin's own config (commands, scripts), not built from profiles
ADMIN_VALUES = {"prologue", "epilogue", "options", "keepvars", "keepvars_extra", "homedir", "srun"}


class BatchGuards(LoggingConfigurable):
    """Mix in before a batchspawner class: ``class X(BatchGuards, SlurmSpawner)``."""

    query_failure_limit = Integer(
        10,
        config=True,
        help="""
        How many failed status queries in a row (a non-zero exit for any reason
        but the batch system saying the job does not exist) are read as "state
        unknown" before the server is given up as dead. batchspawner alone gives
        up at the first failure, which stops live servers whenever the controller
        or the ssh link to the login node hiccups. Default 10 (five minutes at
        JupyterHub's 30 s poll interval).
        """,
    )

    job_gone_pattern = Unicode(
        "",
        config=True,
        help="""
        A regular expression for the status query's error output that means "no
        such job" (the job is over). Any other failure counts towards
        ``query_failure_limit``. Default: the batch system's own wording.
        """,
    )

    _query_failures = 0

    async def start(self):
        """Submit the job, as batchspawner does, once the job's call-back is guarded.

        Raises RuntimeError (the admin's fix in its sentence) when the hub config did
        not call :func:`jhub_af.spawner.install_job_callback`: batchspawner's own
        handler would let the job rewrite its spawner. Called by ProfileSpawner.start.
        """
        if not job_callback_installed():
            raise RuntimeError(NOT_INSTALLED)
        return await super().start()

    def get_req_subvars(self):
        """batchspawner's ``req_*`` values, each re-checked just before use.

        Raises RuntimeError when the user name is not a POSIX user name or a value
        built from the catalogue holds a character outside SAFE_VALUE. Called by
        batchspawner before every command and job script.
        """
        if not SAFE_USERNAME.match(self.user.name):
            raise RuntimeError(
                f"The user name {self.user.name!r} cannot be used on the batch system "
                "(it must be a POSIX user name); ask your facility admin."
            )
        subvars = super().get_req_subvars()
        for key, value in subvars.items():
            if key not in ADMIN_VALUES and not SAFE_VALUE.match(str(value)):
                raise RuntimeError(f"refusing to submit: req_{key} holds unsafe characters")
        return subvars

    async def _get_batch_script(self, **subvars):
        # batchspawner merges self.user_options into ``subvars``, where a key such
        # as "options" or "prologue" would override the admin's value: ignore
        # them all and build the values again from the req_* traits
        safe = self.get_req_subvars()
        safe["cmd"] = self.cmd_formatted_for_batch()
        return format_template(self.batch_script, **safe)

    async def query_job_status(self):
        """The job's state from the batch system (batchspawner's hook, called by its
        ``poll``); a failed query is "unknown" until ``query_failure_limit`` in a row."""
        if not self.job_id:
            self.job_status = ""
            return JobStatus.NOTFOUND
        subvars = self.get_req_subvars()
        subvars["job_id"] = self.job_id
        cmd = " ".join(
            (
                format_template(self.exec_prefix, **subvars),
                format_template(self.batch_query_cmd, **subvars),
            )
        )
        try:
            self.job_status = await self.run_command(cmd)
        except Exception as e:
            return self._query_failed(str(e.args[0]) if e.args else repr(e))
        self._query_failures = 0
        if self.state_isrunning():
            return JobStatus.RUNNING
        if self.state_ispending():
            return JobStatus.PENDING
        if self.state_isunknown():
            return JobStatus.UNKNOWN
        return JobStatus.NOTFOUND

    def _query_failed(self, error: str) -> JobStatus:
        """What a failed status query means: gone, or unknown until the limit."""
        self.job_status = ""
        if self.job_gone_pattern and re.search(self.job_gone_pattern, error):
            self._query_failures = 0
            return JobStatus.NOTFOUND
        self._query_failures += 1
        if self._query_failures < self.query_failure_limit:
            self.log.warning(
                "Status query for job %s failed (%d in a row); keeping the server: %s",
                self.job_id,
                self._query_failures,
                error[:300],
            )
            return JobStatus.UNKNOWN
        self.log.error(
            "Status query for job %s failed %d times in a row; giving the server up",
            self.job_id,
            self._query_failures,
        )
        return JobStatus.NOTFOUND

    def accept_job_port(self, port: int) -> None:
        """The only thing a job may tell the hub: the port its notebook listens on.

        Called by :class:`jhub_af.spawner.callback.JobCallbackHandler`."""
        self.port = port
