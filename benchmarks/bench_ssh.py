"""SFTP download of a 100 MB file: af-ssh vs Debian's OpenSSH sshd, same machine, same run.

Both sides serve with OpenSSH's own ``sftp-server``; af-ssh reaches it in alice's
notebook server through the hub's proxy and jhub_af's binary channel, sshd runs it
directly. The client is OpenSSH's ``sftp`` on both sides (af-ssh: the hub token
as the password through sshpass; sshd: a throwaway key). One sample is one
``sftp`` session that gets the file; the sides alternate. Each server uses its
shipped cipher choice: af-ssh offers AES-GCM only (its default), Debian's sshd
its defaults (the client then picks chacha20-poly1305). Also run
``bench_ssh_upload``, ``bench_ssh_login``, ``bench_ssh_pty`` and
``bench_ssh_pty_floor``: they share the same facility and sshd.
"""

from __future__ import annotations

from ssh_parts import binary_file, parts, sftp

MB = 100

SPEC = {
    "what": f"SFTP download of a {MB} MB file (MB/s, higher is better)",
    "anchor": "OpenSSH sshd on loopback (Debian), same sftp-server and client",
    "unit": "MB/s",
    "target": ">= 0.5",
}


def run(repeats: int) -> tuple[list[float], list[float]]:
    p = parts()
    binary_file(p.home, "bench-100.bin", MB)
    anchor_file = binary_file(p.anchor_dir, "bench-100.bin", MB)
    local = p.root / "local"
    local.mkdir(exist_ok=True)
    ours, anchor = [], []
    for i in range(repeats):
        ours.append(MB / sftp("af-ssh", f"get bench-100.bin {local}/down-ours.bin\n"))
        anchor.append(MB / sftp("openssh", f"get {anchor_file} {local}/down-anchor.bin\n"))
        print(f"   run {i + 1}: af-ssh {ours[-1]:.0f}, OpenSSH {anchor[-1]:.0f} MB/s", flush=True)
    return ours, anchor
