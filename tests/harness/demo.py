"""The demo facility as a user starts it: `make demo` or `jhub-af demo`."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .hub import REPO, RunningHub, hub_answering
from .net import free_port
from .processes import ManagedProcess


def start_demo(
    workdir: Path,
    via_make: bool = False,
    timeout: float = 120,
    *,
    port: int | None = None,
    extra_args: Sequence[str] = (),
) -> RunningHub:
    """Start the demo on ``port`` (a free one if None) with its state in ``workdir``;
    return once it answers.

    ``via_make`` runs the README's ``make demo`` (whose set-up steps are no-ops
    once the venv and node_modules exist), otherwise ``jhub-af demo`` directly.
    ``extra_args`` are more ``jhub-af demo`` options (e.g. ``--login iam ...``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    demo_args = ["--port", str(port), "--data-dir", str(workdir / "data"), *extra_args]
    if "--ssh-port" not in extra_args:  # never the default 8022 in tests
        demo_args[2:2] = ["--ssh-port", str(free_port())]
    if via_make:
        cmd = ["make", "-C", str(REPO), "demo", f"DEMO_ARGS={shlex.join(demo_args)}"]
    else:
        cmd = [str(Path(sys.executable).parent / "jhub-af"), "demo", *demo_args]
    process = ManagedProcess(cmd, log=workdir / "demo.log", cwd=workdir)
    return hub_answering(process, port, workdir, timeout)
