"""Login to prompt, the user's server already running: af-ssh vs OpenSSH sshd.

One sample: asyncssh connects (af-ssh: hub token as password, checked with the
hub; sshd: a throwaway key), opens an interactive shell with a pty and waits for
the output of a first command. On af-ssh the shell is a new Jupyter terminal of
alice's server, reached through the hub's proxy.
"""

from __future__ import annotations

import asyncio

from ssh_parts import login_to_prompt, parts

SPEC = {
    "what": "login to prompt (server running)",
    "anchor": "OpenSSH sshd on loopback (Debian)",
    "unit": "s",
    "target": None,
}


def run(repeats: int) -> tuple[list[float], list[float]]:
    parts()
    ours, anchor = [], []
    for i in range(repeats):
        ours.append(asyncio.run(login_to_prompt("af-ssh")))
        anchor.append(asyncio.run(login_to_prompt("openssh")))
        print(f"   run {i + 1}: af-ssh {ours[-1]:.3f}s, OpenSSH {anchor[-1]:.3f}s", flush=True)
    return ours, anchor
