"""`cat` of 20 MB through af-ssh's PTY vs the bare Jupyter terminal websocket.

The anchor is the floor of any terminal bridge: the same file, the same
terminal machinery of alice's server (terminals REST API + websocket, through
the hub's proxy), driven directly with no SSH in front. The ratio is what the
SSH side of af-ssh costs on top.
"""

from __future__ import annotations

import asyncio

from ssh_parts import cat_through_bare_terminal, cat_through_pty, parts, text_file

MB = 20

SPEC = {
    "what": f"cat {MB} MB through the PTY (MB/s, higher is better)",
    "anchor": "bare Jupyter terminal websocket of the same server",
    "unit": "MB/s",
    "target": None,
}


def run(repeats: int) -> tuple[list[float], list[float]]:
    p = parts()
    path = text_file(p.home, "bench-20.txt", MB)
    ours, anchor = [], []
    for i in range(repeats):
        ours.append(MB / asyncio.run(cat_through_pty("af-ssh", path)))
        anchor.append(MB / asyncio.run(cat_through_bare_terminal(path)))
        print(f"   run {i + 1}: af-ssh {ours[-1]:.1f} MB/s, bare {anchor[-1]:.1f} MB/s", flush=True)
    return ours, anchor
