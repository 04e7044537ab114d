"""`cat` of a 20 MB text file in an interactive shell (pty): af-ssh vs OpenSSH sshd.

af-ssh's shell is a Jupyter terminal (terminado pty -> JSON websocket -> af-ssh ->
SSH); sshd's is its own pty. The client is asyncssh on both sides, timed from
sending the command to seeing the marker printed after it.
"""

from __future__ import annotations

import asyncio

from ssh_parts import cat_through_pty, parts, text_file

MB = 20

SPEC = {
    "what": f"cat {MB} MB through the PTY (MB/s, higher is better)",
    "anchor": "OpenSSH sshd on loopback (Debian)",
    "unit": "MB/s",
    "target": None,
}


def run(repeats: int) -> tuple[list[float], list[float]]:
    p = parts()
    ours_file = text_file(p.home, "bench-20.txt", MB)
    anchor_file = text_file(p.anchor_dir, "bench-20.txt", MB)
    ours, anchor = [], []
    for i in range(repeats):
        ours.append(MB / asyncio.run(cat_through_pty("af-ssh", ours_file)))
        anchor.append(MB / asyncio.run(cat_through_pty("openssh", anchor_file)))
        print(f"   run {i + 1}: af-ssh {ours[-1]:.1f}, OpenSSH {anchor[-1]:.1f} MB/s", flush=True)
    return ours, anchor
