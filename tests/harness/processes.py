"""A process started for a test: own process group, log file, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import psutil


class ManagedProcess:
    """Popen in a new session, output to ``log``; ``stop()`` ends it and its group."""

    def __init__(self, cmd: list[str], log: Path, cwd: Path | None = None, env=None):
        self.cmd = cmd
        self.log = log
        self._log_file = log.open("ab")
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return f"--- last lines of {self.log} ---\n" + "\n".join(text[-lines:])

    def descendants(self) -> list[psutil.Process]:
        """The process and everything below it, as psutil handles (for checks)."""
        try:
            me = psutil.Process(self.pid)
            return [me, *me.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM the group, wait, then SIGKILL whatever is left of the whole tree."""
        tree = self.descendants()
        if self.alive():
            self.signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait(10)
        # notebooks run in sessions of their own: make sure none outlives the test
        _, left = psutil.wait_procs(tree, timeout=30)
        for p in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        self._log_file.close()
        return self.proc.returncode
